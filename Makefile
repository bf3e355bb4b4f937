# Entry points; the work is done by scripts/ (see each script's header).
.PHONY: run test test-cluster build pulsar-start pulsar-stop mariadb-start mariadb-stop clean cluster-start cluster-stop

run:
	scripts/run.sh

test:
	scripts/test.sh

# The failover tests on the multi-broker cluster (not part of make test).
test-cluster:
	scripts/test-cluster.sh

build:
	go build ./...

pulsar-start:
	scripts/pulsar.sh start

pulsar-stop:
	scripts/pulsar.sh stop

mariadb-start:
	scripts/mariadb.sh start

mariadb-stop:
	scripts/mariadb.sh stop

# Stops every broker and database under .run first, so none is orphaned.
clean:
	-for d in .run/pulsar-[0-9]*; do [ -d "$$d" ] && PULSAR_PORT=$${d##*-} scripts/pulsar.sh stop; done
	-for d in .run/pulsar-seguro-*; do [ -d "$$d" ] && PULSAR_SEGURO=1 PULSAR_TLS_PORT=$${d##*-} scripts/pulsar.sh stop; done
	-for d in .run/mariadb-[0-9]*; do [ -d "$$d" ] && SAGAS_DB_PORT=$${d##*-} scripts/mariadb.sh stop; done
	-for d in .run/mariadb-tls-*; do [ -d "$$d" ] && MARIADB_TLS=1 SAGAS_DB_PORT=$${d##*-} scripts/mariadb.sh stop; done
	-[ -d .run/cluster ] && scripts/cluster.sh stop
	rm -rf .run

cluster-start:
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop
