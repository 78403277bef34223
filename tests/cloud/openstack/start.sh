#!/bin/bash
# Start a real OpenStack on 127.0.0.1 inside the test root (Debian 12's own Zed packages):
# Keystone, Glance and Placement on SQLite in WAL mode, Nova with the fake compute driver on
# MariaDB (Nova on SQLite fails lock and snapshot updates), RabbitMQ, and a stand-in for the
# few Neutron reads Nova makes when servers have no ports. Run as root in the root's chroot,
# from tests/cloud/openstack_stack.py; prints "STACK READY" when Nova's compute host is up.
set -euo pipefail
here=/srv/stack
logs=/var/log/stack
mkdir -p "$logs"
T0=$(date +%s)
mark() { echo "STACK $1 after $(( $(date +%s) - T0 ))s"; }
wal() { python3 -c "import sqlite3, sys; sqlite3.connect(sys.argv[1]).execute('PRAGMA journal_mode=WAL')" "$1"; }
export HOME=/root

# RabbitMQ and MariaDB start first: they take longest and nothing needs them before Nova.
cp "$here/conf/rabbitmq-env.conf" /etc/rabbitmq/rabbitmq-env.conf
ERL_EPMD_ADDRESS=127.0.0.1 nohup rabbitmq-server >"$logs/rabbitmq.out" 2>&1 &
mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
nohup mysqld_safe --bind-address=127.0.0.1 --port=3306 --skip-name-resolve \
    >"$logs/mysqld.out" 2>&1 &

# Keystone
cp "$here/conf/keystone.conf" /etc/keystone/keystone.conf
mkdir -p /var/lib/keystone
keystone-manage db_sync
wal /var/lib/keystone/keystone.sqlite
keystone-manage fernet_setup --keystone-user root --keystone-group root
keystone-manage credential_setup --keystone-user root --keystone-group root
keystone-manage bootstrap --bootstrap-password admin \
    --bootstrap-admin-url http://127.0.0.1:5000/v3/ --bootstrap-internal-url http://127.0.0.1:5000/v3/ \
    --bootstrap-public-url http://127.0.0.1:5000/v3/ --bootstrap-region-id RegionOne
nohup keystone-wsgi-public --host 127.0.0.1 --port 5000 >"$logs/keystone-wsgi.out" 2>&1 &
until curl -s -o /dev/null http://127.0.0.1:5000/v3; do sleep 0.3; done
mark keystone-up
python3 "$here/seed.py"
mark keystone-seeded
nohup python3 "$here/neutron_stub.py" >"$logs/neutron_stub.out" 2>&1 &

# Glance
cp "$here/conf/glance-api.conf" /etc/glance/glance-api.conf
mkdir -p /var/lib/glance/images
glance-manage db_sync >"$logs/glance-dbsync.out" 2>&1
wal /var/lib/glance/glance.sqlite
nohup glance-api --config-file /etc/glance/glance-api.conf >"$logs/glance-api.out" 2>&1 &

# Placement
cp "$here/conf/placement.conf" /etc/placement/placement.conf
placement-manage db sync
wal /var/lib/placement/placement.sqlite
nohup placement-api --host 127.0.0.1 --port 8778 >"$logs/placement-api.out" 2>&1 &

# Nova
until mysqladmin ping >/dev/null 2>&1; do sleep 0.3; done
mysql -e "CREATE DATABASE nova_api; CREATE DATABASE nova; CREATE DATABASE nova_cell0;
  CREATE USER 'nova'@'127.0.0.1' IDENTIFIED BY 'nova';
  GRANT ALL ON nova_api.* TO 'nova'@'127.0.0.1'; GRANT ALL ON nova.* TO 'nova'@'127.0.0.1';
  GRANT ALL ON nova_cell0.* TO 'nova'@'127.0.0.1';"
cp "$here/conf/nova.conf" /etc/nova/nova.conf
mkdir -p /var/lib/nova/tmp /var/lib/nova/instances
nova-manage api_db sync
nova-manage cell_v2 map_cell0 --database_connection mysql+pymysql://nova:nova@127.0.0.1/nova_cell0
nova-manage cell_v2 create_cell --name cell1
nova-manage db sync
mark nova-databases
until rabbitmqctl -q status >/dev/null 2>&1; do sleep 1; done
mark rabbitmq-up
for s in api conductor scheduler compute; do
    nohup "nova-$s" --config-file /etc/nova/nova.conf >"$logs/nova-$s.out" 2>&1 &
done
until curl -s -o /dev/null http://127.0.0.1:8774/; do sleep 0.5; done
mark nova-api-up
python3 "$here/seed.py" --compute
mark compute-up
echo "STACK READY"
# Stay: the services are this script's children; the test session ends them by ending the
# namespace they run in.
wait
