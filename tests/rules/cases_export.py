"""Pass and fail scenarios of the export rules (``rules/export/``)."""

from __future__ import annotations

from imageaudit.model import Severity, Status
from tests.rules.harness import case

# --- export_nfs_world_writable --------------------------------------------------------------

case("export_nfs_world_writable", Status.FAIL,
     {"/etc/exports": "/srv/a *(rw,sync)\n/srv/c 10.0.0.0/8(rw) 192.168.1.0/24(rw)\n"
                      "/srv/e *(ro)\n"},
     resources={"/srv/a *", "/srv/c 10.0.0.0/8"},
     message="NFS export `/srv/a` is writable by every host: the client `*` matches every host "
     "(/etc/exports line 1)")
case("export_nfs_world_writable", Status.FAIL,
     {"/etc/exports": "/srv/b host1 (rw)\n"}, resources={"/srv/b *"}, name="space-trap",
     message="NFS export `/srv/b` is writable by every host: the space before `(rw)` in "
     "`/srv/b host1 (rw)` (/etc/exports line 1) makes those options apply to every host "
     "(`*`), not to the host before it, which gets the defaults")
case("export_nfs_world_writable", Status.FAIL,
     {"/etc/exports.d/wide.exports": "/data 0.0.0.0/0(rw,no_subtree_check)\n"},
     resources={"/data 0.0.0.0/0"}, name="dropin-wide",
     message="NFS export `/data` is writable by every host: the network `0.0.0.0/0` covers "
     "4294967296 addresses (/etc/exports.d/wide.exports line 1)")
case("export_nfs_world_writable", Status.FAIL,
     {"/etc/exports": "/srv -rw\n"}, resources={"/srv *"}, name="no-client",
     message="NFS export `/srv` is writable by every host: the line names no client, so "
     "exportfs exports it to every host (/etc/exports line 1)")
# a later ro wins over the line default rw
case("export_nfs_world_writable", Status.PASS, {"/etc/exports": "/srv -rw *(ro)\n"},
     name="later-ro")
case("export_nfs_world_writable", Status.PASS,
     {"/etc/exports": "/srv/a host1(rw) 192.168.0.0/16(rw) *(ro)\n"})
# a malformed line is never passed over
case("export_nfs_world_writable", Status.ERROR,
     {"/etc/exports": "/srv/a host1(rw)\n/srv/f \"unterminated(rw)\n"},
     resources={"/etc/exports line 2"}, name="malformed",
     message="Could not evaluate /etc/exports line 2: unterminated quote "
     "(`/srv/f \"unterminated(rw)`)")

# --- export_nfs_no_root_squash --------------------------------------------------------------

case("export_nfs_no_root_squash", Status.FAIL,
     {"/etc/exports": "/srv/b host1(rw,no_root_squash)\n"},
     resources={"/srv/b host1"}, severity=Severity.HIGH,
     message="NFS export `/srv/b` to `host1` has `no_root_squash` (/etc/exports line 1); root "
     "on the client is root on the export")
case("export_nfs_no_root_squash", Status.FAIL,
     {"/etc/exports": "/srv/a *(rw,no_root_squash)\n"},
     resources={"/srv/a *"}, severity=Severity.CRITICAL, name="world-writable",
     message="NFS export `/srv/a` to `*` has `no_root_squash` (/etc/exports line 1); root on "
     "the client is root on the export, and it is writable by every host: the client `*` "
     "matches every host (/etc/exports line 1)")
case("export_nfs_no_root_squash", Status.PASS,
     {"/etc/exports": "/srv/c host2(no_root_squash,root_squash)\n/srv/d host3(rw)\n"})

# --- export_nfs_insecure --------------------------------------------------------------------

case("export_nfs_insecure", Status.FAIL,
     {"/etc/exports": "/srv/a host1(rw,insecure)\n/srv/b host2(rw)\n"},
     resources={"/srv/a host1"},
     message="NFS export `/srv/a` to `host1` has `insecure` (/etc/exports line 1); "
     "unprivileged client processes can send requests")
case("export_nfs_insecure", Status.PASS, {"/etc/exports": "/srv/b host2(rw,secure)\n"})

# --- export_samba_guest ---------------------------------------------------------------------

SMB = "/etc/samba/smb.conf"
SHARES = ("[global]\n workgroup = W\n map to guest = Bad User\n"
          "[public]\n path = /srv/public\n guest ok = yes\n"
          "[drop]\n path = /srv/drop\n public = yes\n writeable = yes\n"
          "[private]\n path = /srv/p\n valid users = alice\n guest ok = yes\n"
          "[rw2]\n path = /srv/rw2\n guest ok = yes\n read only = no\n hosts allow = 10.\n"
          "[off]\n path = /srv/off\n guest ok = yes\n available = no\n")
case("export_samba_guest", Status.FAIL, {SMB: SHARES},
     resources={"public", "drop", "rw2"},
     message="Samba share `drop` (`/srv/drop`) is open to guests without a password "
     "(`public = yes`, /etc/samba/smb.conf line 9) and guests can write to it "
     "(`writeable = yes`, /etc/samba/smb.conf line 10); `map to guest = Bad User` also sends "
     "failed logins to the guest account")
case("export_samba_guest", Status.FAIL,
     {SMB: "[global]\n guest ok = yes\n[data]\n path = /srv/data\n"},
     resources={"data"}, severity=Severity.MODERATE, name="global-default",
     message="Samba share `data` (`/srv/data`) is open to guests without a password "
     "(`guest ok = yes`, /etc/samba/smb.conf line 2)")
case("export_samba_guest", Status.FAIL,
     {SMB: "[upload]\n path = /srv/up\n guest ok = yes\n write list = nobody\n"},
     resources={"upload"}, severity=Severity.CRITICAL, name="write-list",
     message="Samba share `upload` (`/srv/up`) is open to guests without a password "
     "(`guest ok = yes`, /etc/samba/smb.conf line 3) and guests can write to it (the guest "
     "account `nobody` is in `write list`)")
case("export_samba_guest", Status.PASS,
     {SMB: "[global]\n map to guest = Never\n[data]\n path = /srv\n valid users = @staff\n"})
# Samba ignores a value that is not a boolean and keeps the default (no guests)
case("export_samba_guest", Status.PASS, {SMB: "[data]\n path = /srv\n guest ok = yess\n"},
     name="bad-boolean")
case("export_samba_guest", Status.ERROR,
     {SMB: "[global]\n include = registry\n[data]\n path = /srv\n"},
     resources={SMB}, name="registry",
     message="Could not evaluate every Samba share: include = registry "
     "(/etc/samba/smb.conf line 2)")
case("export_samba_guest", Status.FAIL,
     {SMB: "[global]\n include = /etc/samba/%m.conf\n[data]\n path = /srv\n guest ok = yes\n"},
     resources={"data", SMB}, name="substitution",
     message="Could not evaluate every Samba share: include with a substitution cannot be "
     "resolved: /etc/samba/%m.conf (/etc/samba/smb.conf line 2)")
