"""sshd keywords (canonical spelling, aliases, multi-valued ones) and built-in defaults.

Defaults are those of upstream OpenSSH >= 7.0 as documented in sshd_config(5); where an
older release differed in a way rules care about, :func:`defaults_for` adjusts them when the
version is known. Algorithm lists (Ciphers, MACs, KexAlgorithms...) depend on the build and
are not assumed.

Follows: sshd_config(5) of OpenSSH 7.0 to 9.9, OpenSSH release notes.
"""

from __future__ import annotations

_KEYWORDS = """
AcceptEnv AddressFamily AllowAgentForwarding AllowGroups AllowStreamLocalForwarding
AllowTcpForwarding AllowUsers AuthenticationMethods AuthorizedKeysCommand
AuthorizedKeysCommandUser AuthorizedKeysFile AuthorizedPrincipalsCommand
AuthorizedPrincipalsCommandUser AuthorizedPrincipalsFile Banner CASignatureAlgorithms
ChannelTimeout ChrootDirectory Ciphers ClientAliveCountMax ClientAliveInterval Compression
DenyGroups DenyUsers DisableForwarding ExposeAuthInfo FingerprintHash ForceCommand
GatewayPorts GSSAPIAuthentication GSSAPICleanupCredentials GSSAPIKexAlgorithms
GSSAPIKeyExchange GSSAPIStoreCredentialsOnRekey GSSAPIStrictAcceptorCheck
GSSAPIEnablek5users HostbasedAcceptedAlgorithms HostbasedAuthentication
HostbasedUsesNameFromPacketOnly HostCertificate HostKey HostKeyAgent HostKeyAlgorithms
IgnoreRhosts IgnoreUserKnownHosts Include IPQoS KbdInteractiveAuthentication
KerberosAuthentication KerberosGetAFSToken KerberosOrLocalPasswd KerberosTicketCleanup
KerberosUseKuserok KexAlgorithms ListenAddress LoginGraceTime LogLevel LogVerbose MACs Match
MaxAuthTries MaxSessions MaxStartups ModuliFile PasswordAuthentication PermitEmptyPasswords
PermitListen PermitOpen PermitRootLogin PermitTTY PermitTunnel PermitUserEnvironment
PermitUserRC PerSourceMaxStartups PerSourceNetBlockSize PerSourcePenalties
PerSourcePenaltyExemptList PidFile Port PrintLastLog PrintMotd PubkeyAcceptedAlgorithms
PubkeyAuthOptions PubkeyAuthentication RDomain RefuseConnection RekeyLimit RequiredRSASize
RevokedKeys SecurityKeyProvider SetEnv SshdAuthPath SshdSessionPath StreamLocalBindMask
StreamLocalBindUnlink StrictModes Subsystem SyslogFacility TCPKeepAlive TrustedUserCAKeys
UnusedConnectionTimeout UseBlacklist UseBlocklist UseDNS UsePAM VersionAddendum
X11DisplayOffset X11Forwarding X11UseLocalhost XAuthLocation DebianBanner
"""

KEYWORDS: dict[str, str] = {k.lower(): k for k in _KEYWORDS.split()}

# Old spellings sshd still accepts for the same option.
ALIASES: dict[str, str] = {
    "challengeresponseauthentication": "KbdInteractiveAuthentication",
    "skeyauthentication": "KbdInteractiveAuthentication",
    "hostbasedacceptedkeytypes": "HostbasedAcceptedAlgorithms",
    "pubkeyacceptedkeytypes": "PubkeyAcceptedAlgorithms",
    "dsaauthentication": "PubkeyAuthentication",
    "keepalive": "TCPKeepAlive",
    "authorizedkeysfile2": "AuthorizedKeysFile",
}

# Keywords sshd accepts, logs as deprecated or unsupported, and ignores.
DEPRECATED = frozenset(
    {
        "protocol", "useprivilegeseparation", "rsaauthentication", "rhostsrsaauthentication",
        "serverkeybits", "keyregenerationinterval", "uselogin", "pamauthenticationviakbdint",
        "kerberostgtpassing", "afstokenpassing", "verifyreversemapping",
        "reversemappingcheck", "showpatchlevel", "rhostsauthentication",
    }
)  # fmt: skip

# Every occurrence adds values instead of the first one winning.
MULTI_VALUED = frozenset(
    {
        "AcceptEnv", "AllowGroups", "AllowUsers", "DenyGroups", "DenyUsers",
        "HostCertificate", "HostKey", "ListenAddress", "Port", "Subsystem",
    }
)  # fmt: skip

MODERN_DEFAULTS: dict[str, str] = {
    "AddressFamily": "any",
    "AllowAgentForwarding": "yes",
    "AllowStreamLocalForwarding": "yes",
    "AllowTcpForwarding": "yes",
    "AuthenticationMethods": "any",
    "AuthorizedKeysFile": ".ssh/authorized_keys .ssh/authorized_keys2",
    "Banner": "none",
    "ChrootDirectory": "none",
    "ClientAliveCountMax": "3",
    "ClientAliveInterval": "0",
    "Compression": "yes",
    "DisableForwarding": "no",
    "ExposeAuthInfo": "no",
    "FingerprintHash": "sha256",
    "ForceCommand": "none",
    "GatewayPorts": "no",
    "GSSAPIAuthentication": "no",
    "HostbasedAuthentication": "no",
    "HostKey": (
        "/etc/ssh/ssh_host_rsa_key /etc/ssh/ssh_host_ecdsa_key /etc/ssh/ssh_host_ed25519_key"
    ),
    "IgnoreRhosts": "yes",
    "IgnoreUserKnownHosts": "no",
    "KbdInteractiveAuthentication": "yes",
    "KerberosAuthentication": "no",
    "ListenAddress": "0.0.0.0 ::",
    "LogLevel": "INFO",
    "LoginGraceTime": "120",
    "MaxAuthTries": "6",
    "MaxSessions": "10",
    "MaxStartups": "10:30:100",
    "PasswordAuthentication": "yes",
    "PermitEmptyPasswords": "no",
    "PermitListen": "any",
    "PermitOpen": "any",
    "PermitRootLogin": "prohibit-password",
    "PermitTTY": "yes",
    "PermitTunnel": "no",
    "PermitUserEnvironment": "no",
    "PermitUserRC": "yes",
    "Port": "22",
    "PrintLastLog": "yes",
    "PrintMotd": "yes",
    "PubkeyAuthentication": "yes",
    "StreamLocalBindUnlink": "no",
    "StrictModes": "yes",
    "SyslogFacility": "AUTH",
    "TCPKeepAlive": "yes",
    "UseDNS": "no",
    "UsePAM": "no",
    "X11DisplayOffset": "10",
    "X11Forwarding": "no",
    "X11UseLocalhost": "yes",
}


def canonical(keyword: str) -> tuple[str | None, str | None]:
    """``(canonical name, None)`` for a known keyword, ``(None, reason)`` otherwise."""
    low = keyword.lower()
    if low in KEYWORDS:
        return KEYWORDS[low], None
    if low in ALIASES:
        return ALIASES[low], None
    if low in DEPRECATED:
        return None, f"deprecated option {keyword!r}, ignored by sshd"
    return None, f"bad configuration option {keyword!r} (sshd refuses to start)"


def defaults_for(version: tuple[int, int] | None) -> tuple[dict[str, str], str]:
    """Built-in defaults for an OpenSSH ``(major, minor)`` and a note saying what was assumed."""
    defaults = dict(MODERN_DEFAULTS)
    if version is None:
        return defaults, "OpenSSH >= 7.0 defaults assumed (version unknown)"
    if version < (7, 0):
        defaults["PermitRootLogin"] = "yes"
    if version < (6, 8):
        defaults["UseDNS"] = "yes"
    if version < (7, 4):
        defaults["Compression"] = "delayed"
    return defaults, f"OpenSSH {version[0]}.{version[1]} defaults"
