#!/bin/sh
# Runs once, right after the InfluxDB 2.x container's first set-up (docker-entrypoint-initdb.d):
# - a DBRP mapping so InfluxQL (Grafana, sensord report, v1 /write) reaches the bucket
#   under the database name "$DOCKER_INFLUXDB_INIT_BUCKET", retention policy "autogen";
# - least-privilege v1 credentials: "grafana" may only read, "sensord-ingest" only write.
set -eu
: "${INFLUXDB_GRAFANA_PASSWORD:?set INFLUXDB_GRAFANA_PASSWORD in .env}"
: "${INFLUXDB_INGEST_PASSWORD:?set INFLUXDB_INGEST_PASSWORD in .env}"

influx v1 dbrp create \
  --bucket-id "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
  --db "$DOCKER_INFLUXDB_INIT_BUCKET" --rp autogen --default

influx v1 auth create --username grafana \
  --password "$INFLUXDB_GRAFANA_PASSWORD" \
  --read-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
  --description "Grafana (read only)" >/dev/null

influx v1 auth create --username sensord-ingest \
  --password "$INFLUXDB_INGEST_PASSWORD" \
  --write-bucket "$DOCKER_INFLUXDB_INIT_BUCKET_ID" \
  --description "sensord ingest (write only)" >/dev/null

echo "sensord: DBRP mapping and v1 credentials for grafana / sensord-ingest created"
