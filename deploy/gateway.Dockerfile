# The cluster's gateway: Debian's nginx with njs (the merged listing, the key's
# shard, /health) and the stream module (TLS in front of twemproxy), and
# Debian's twemproxy (nutcracker), run by the same image as another service.
# The configuration is rendered at start from deploy/nginx.conf.template (the
# one scripts/cluster.sh uses). Built by docker-compose.yml (context: the
# repository root).
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      nginx-light libnginx-mod-http-js libnginx-mod-stream nutcracker curl \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10002 --user-group --no-create-home --home-dir /nonexistent gateway \
 && mkdir -p /run/gateway /var/lib/gateway \
 && chown gateway:gateway /run/gateway /var/lib/gateway
COPY deploy/nginx.conf.template deploy/render-gateway.sh deploy/gateway-entrypoint.sh \
     deploy/gateway.js /etc/gateway/
ENV GATEWAY_PORT=9000 \
    GATEWAY_RESP_PORT=6379
VOLUME /var/lib/gateway
USER gateway
EXPOSE 9000 6379 22121
HEALTHCHECK --interval=10s --timeout=5s --start-period=5s --retries=3 \
  CMD ["bash", "-c", ": </dev/tcp/127.0.0.1/${GATEWAY_PORT} 2>/dev/null || : </dev/tcp/127.0.0.1/22222"]
STOPSIGNAL SIGQUIT
ENTRYPOINT ["/etc/gateway/gateway-entrypoint.sh"]
CMD ["gateway"]
