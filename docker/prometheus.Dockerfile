# A Prometheus for docker-compose.yml, from Debian's package (prometheus 2.42 on bookworm): builds
# from the same debian:bookworm base as the CPU image, so the compose file needs no registry pull
# beyond that (set PROMETHEUS_IMAGE=prom/prometheus:v2.53.0 to use the upstream image instead).
FROM debian:bookworm
RUN apt-get update -qq \
 && apt-get install -y -qq --no-install-recommends prometheus \
 && rm -rf /var/lib/apt/lists/* \
 && mkdir -p /prometheus && chown prometheus:prometheus /prometheus
USER prometheus
EXPOSE 9090
ENTRYPOINT ["/usr/bin/prometheus"]
CMD ["--config.file=/etc/prometheus/prometheus.yml", "--storage.tsdb.path=/prometheus"]
