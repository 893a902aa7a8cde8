# upstream.sh - sourced by callgrind.sh, rss.sh and cpu-split.sh: writes
# $OUT/up/nginx.conf (an nginx upstream on 127.0.0.1:$UP_PORT answering 1 KiB) and
# $OUT/bootstrap.yaml (the bootstrap shape of /work/shared/bench/weft-proxy.sh: one
# listener on 127.0.0.1:$PORT, one round-robin cluster to the upstream), and defines
# wait_200 (below). Needs OUT, UP_PORT and PORT. ROUTE replaces the
# route action, e.g. ROUTE='{ cluster: upstream, retry_policy: { retry_on: 5xx, num_retries: 2 } }';
# HCM_EXTRA adds fields to the HTTP connection manager, e.g. an access_log list (flow style).
mkdir -p "$OUT"/{up/logs,up/tmp}

body=$(head -c 1024 /dev/zero | tr '\0' 'x')
cat >"$OUT/up/nginx.conf" <<NGX
worker_processes 1; daemon off; master_process off;
pid $OUT/up/nginx.pid; error_log $OUT/up/logs/error.log warn;
events { worker_connections 4096; }
http {
  access_log off; keepalive_requests 100000000; keepalive_timeout 300s;
  client_body_temp_path $OUT/up/tmp/cb; proxy_temp_path $OUT/up/tmp/px;
  fastcgi_temp_path $OUT/up/tmp/fc; uwsgi_temp_path $OUT/up/tmp/uw; scgi_temp_path $OUT/up/tmp/sc;
  server { listen 127.0.0.1:$UP_PORT; location / { default_type text/plain; return 200 "$body"; } }
}
NGX
cat >"$OUT/bootstrap.yaml" <<YAML
admin:
  address: { socket_address: { address: 127.0.0.1, port_value: 0 } }
static_resources:
  listeners:
  - name: bench
    address: { socket_address: { address: 127.0.0.1, port_value: $PORT } }
    filter_chains:
    - filters:
      - name: envoy.filters.network.http_connection_manager
        typed_config:
          "@type": type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager
          stat_prefix: bench
          ${HCM_EXTRA:-}
          codec_type: AUTO
          route_config:
            name: local
            virtual_hosts:
            - name: all
              domains: ["*"]
              routes:
              - match: { prefix: "/" }
                route: ${ROUTE:-{ cluster: upstream \}}
          http_filters:
          - name: envoy.filters.http.router
            typed_config:
              "@type": type.googleapis.com/envoy.extensions.filters.http.router.v3.Router
  clusters:
  - name: upstream
    type: STATIC
    lb_policy: ROUND_ROBIN
    connect_timeout: 1s
    load_assignment:
      cluster_name: upstream
      endpoints:
      - lb_endpoints:
        - endpoint: { address: { socket_address: { address: 127.0.0.1, port_value: $UP_PORT } } }
YAML

# wait_200 TRIES PAUSE [PORT]: polls http://127.0.0.1:PORT/ ($PORT by default) until it
# answers 200; fails if it never did within TRIES tries PAUSE seconds apart.
wait_200() {
  for _ in $(seq 1 "$1"); do
    [[ "$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "http://127.0.0.1:${3:-$PORT}/" || true)" == 200 ]] && return 0
    sleep "$2"
  done
  return 1
}
