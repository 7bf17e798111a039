# The cluster's gateway: Debian's nginx with the configuration rendered from
# deploy/nginx.conf.template (the one scripts/cluster.sh uses), at start, from
# GATEWAY_VOLUMES. Built by docker-compose.yml (context: the repository root).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends nginx-light \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10002 --user-group --no-create-home --home-dir /nonexistent gateway \
 && mkdir -p /run/gateway \
 && chown gateway:gateway /run/gateway
COPY deploy/nginx.conf.template deploy/render-gateway.sh deploy/gateway-entrypoint.sh /etc/gateway/
ENV GATEWAY_PORT=9000 \
    GATEWAY_VOLUMES="vol-1=vol-1:9002 vol-2=vol-2:9002 vol-3=vol-3:9002"
USER gateway
EXPOSE 9000
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${GATEWAY_PORT} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/etc/gateway/gateway-entrypoint.sh"]
