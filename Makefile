# Entry points; the work is done by scripts/ (see each script's header).
.PHONY: run test build pulsar-start pulsar-stop mariadb-start mariadb-stop clean

run:
	scripts/run.sh

test:
	scripts/test.sh

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
	-for d in .run/pulsar-*; do [ -d "$$d" ] && PULSAR_PORT=$${d##*-} scripts/pulsar.sh stop; done
	-for d in .run/mariadb-*; do [ -d "$$d" ] && SAGAS_DB_PORT=$${d##*-} scripts/mariadb.sh stop; done
	rm -rf .run

cluster-start:
	scripts/cluster.sh start

cluster-stop:
	scripts/cluster.sh stop
