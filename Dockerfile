# mini-kvstore's volume-server (and the kvstore CLI) on Debian 12.
#   make docker        (docker build -t mini-kvstore:latest .)
#   docker run -d -p 127.0.0.1:9002:9002 -v kvdata:/data mini-kvstore:latest

# ---- build: the compiler and the -dev packages
FROM debian:bookworm-slim AS build
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      build-essential cmake pkg-config \
      zlib1g-dev libisal-dev libxxhash-dev \
      libzstd-dev libmicrohttpd-dev libjansson-dev libuv1-dev \
      libedit-dev libhiredis-dev libcurl4-openssl-dev libjs-chart.js \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY CMakeLists.txt kvstore.pc.in ./
COPY include include
COPY src src
COPY cmd cmd
COPY examples examples
COPY bench bench
RUN cmake -S . -B build -DCMAKE_BUILD_TYPE=Release -DKV_BUILD_TESTS=OFF -DKV_MAN=OFF \
 && cmake --build build -j "$(nproc)" --target volume-server kvstore \
 && strip build/volume-server build/kvstore

# ---- run: only the runtime libraries
FROM debian:bookworm-slim
RUN apt-get update \
 && apt-get install -y --no-install-recommends \
      zlib1g libisal2 libxxhash0 libzstd1 libmicrohttpd12 libjansson4 libuv1 \
      libedit2 libhiredis0.14 libcurl4 \
 && rm -rf /var/lib/apt/lists/* \
 && useradd --system --uid 10001 --user-group --home-dir /data --no-create-home kvstore \
 && mkdir -p /data \
 && chown kvstore:kvstore /data
COPY --from=build /src/build/volume-server /src/build/kvstore /usr/local/bin/
# a cluster node's entry point in docker-compose.yml: its role from the gateway's topology
COPY deploy/node-entrypoint.sh /usr/local/bin/kv-cluster-node
ENV HOST=0.0.0.0 \
    PORT=9002 \
    VOLUME_ID=vol-1 \
    DATA_DIR=/data
VOLUME /data
WORKDIR /data
USER kvstore
EXPOSE 9002 6380
# bash's /dev/tcp: no HTTP client needed in the image.
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/${PORT:-9002} && printf 'GET /health HTTP/1.0\\r\\n\\r\\n' >&3 && head -n 1 <&3 | grep -q ' 200 '"]
# SIGTERM: the server finishes in-flight requests, syncs, saves its index
# snapshot and exits 0 (a fast restart without a full log replay).
STOPSIGNAL SIGTERM
ENTRYPOINT ["volume-server"]
