"""Accounts and endpoints of the test OpenStack (run inside its root, with its openstacksdk).

Users: ``admin`` (admin of project ``admin``), ``alice`` (member of project ``vo1``) and ``bob``
(member of project ``vo2``), each with their name as password; the service users Glance, Nova
and Placement authenticate with. ``--compute`` instead waits for Nova's fake compute host to be
up and creates the flavour the tests boot servers with.
"""

import sys
import time

import openstack


def admin():
    return openstack.connect(
        auth_url="http://127.0.0.1:5000/v3", username="admin", password="admin",
        project_name="admin", user_domain_name="Default", project_domain_name="Default",
        region_name="RegionOne",
    )


def seed() -> None:
    idp = admin().identity
    service = idp.create_project(name="service", domain_id="default")
    admin_role = idp.find_role("admin")
    member = idp.find_role("member")
    for name in ("glance", "nova", "placement"):
        user = idp.create_user(name=name, password=name, domain_id="default")
        idp.assign_project_role_to_user(service, user, admin_role)
    for project, user in (("vo1", "alice"), ("vo2", "bob")):
        p = idp.create_project(name=project, domain_id="default")
        u = idp.create_user(name=user, password=user, domain_id="default")
        idp.assign_project_role_to_user(p, u, member)
    endpoints = (("glance", "image", "http://127.0.0.1:9292"),
                 ("nova", "compute", "http://127.0.0.1:8774/v2.1"),
                 ("placement", "placement", "http://127.0.0.1:8778"),
                 ("neutron", "network", "http://127.0.0.1:9696"))
    for name, kind, url in endpoints:
        service_ref = idp.create_service(name=name, type=kind)
        for interface in ("public", "internal", "admin"):
            idp.create_endpoint(service_id=service_ref.id, interface=interface, url=url,
                                region_id="RegionOne")


def compute_up(timeout: float = 900) -> None:
    conn = admin()
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            if any(h.state == "up" for h in conn.compute.hypervisors(details=True)):
                break
        except Exception:
            pass
        time.sleep(3)
    else:
        sys.exit("nova-compute did not report up")
    conn.compute.create_flavor(name="m1.tiny", ram=64, vcpus=1, disk=1)
    # The tests boot more servers than Nova's default quota (10 a project) allows.
    for project in ("admin", "vo1", "vo2"):
        p = conn.identity.find_project(project)
        conn.set_compute_quotas(p.id, instances=-1, cores=-1, ram=-1)


if __name__ == "__main__":
    compute_up() if "--compute" in sys.argv else seed()
