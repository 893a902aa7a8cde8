//! The subset of Envoy's API that weft implements, for reporting everything else at start.
//! Keep it in step with the `TryFrom` conversions: a field listed here must be honoured.

use weft_xds::Support;

/// Messages and the fields of each that weft implements (`*`: all of them).
pub static SUPPORT: Support = Support(&[
    (
        "envoy.config.bootstrap.v3.Bootstrap",
        &["admin", "static_resources", "node", "dynamic_resources"],
    ),
    // ADS (the xDS client): CDS and LDS over the aggregated stream only.
    (
        "envoy.config.bootstrap.v3.Bootstrap.DynamicResources",
        &["ads_config", "cds_config", "lds_config"],
    ),
    (
        "envoy.config.core.v3.ApiConfigSource",
        &[
            "api_type",
            "transport_api_version",
            "grpc_services",
            "set_node_on_first_message_only",
        ],
    ),
    (
        "envoy.config.core.v3.GrpcService",
        &["envoy_grpc", "timeout"],
    ),
    (
        "envoy.config.core.v3.GrpcService.EnvoyGrpc",
        &["cluster_name"],
    ),
    (
        "envoy.config.core.v3.ConfigSource",
        &["ads", "resource_api_version", "initial_fetch_timeout"],
    ),
    ("envoy.config.core.v3.AggregatedConfigSource", &[]),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.Rds",
        &["config_source", "route_config_name"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.EdsClusterConfig",
        &["eds_config", "service_name"],
    ),
    ("envoy.config.core.v3.Node", &["*"]),
    (
        "envoy.config.bootstrap.v3.Admin",
        &["address", "access_log_path"],
    ),
    (
        "envoy.config.bootstrap.v3.Bootstrap.StaticResources",
        &["listeners", "clusters"],
    ),
    ("envoy.config.core.v3.Address", &["socket_address"]),
    (
        "envoy.config.core.v3.SocketAddress",
        &["address", "port_value", "protocol"],
    ),
    // Listeners
    (
        "envoy.config.listener.v3.Listener",
        &[
            "name",
            "address",
            "filter_chains",
            "default_filter_chain",
            "use_original_dst",
            "listener_filters",
            "listener_filters_timeout",
            "continue_on_listener_filters_timeout",
            "bind_to_port",
            "traffic_direction",
            "stat_prefix",
        ],
    ),
    (
        "envoy.config.listener.v3.ListenerFilter",
        &["name", "typed_config"],
    ),
    (
        "envoy.extensions.filters.listener.original_dst.v3.OriginalDst",
        &[],
    ),
    (
        "envoy.extensions.filters.listener.tls_inspector.v3.TlsInspector",
        &[],
    ),
    (
        "envoy.extensions.filters.listener.http_inspector.v3.HttpInspector",
        &[],
    ),
    (
        "envoy.config.listener.v3.FilterChain",
        &["filter_chain_match", "filters", "name"],
    ),
    (
        "envoy.config.listener.v3.FilterChainMatch",
        &[
            "destination_port",
            "server_names",
            "transport_protocol",
            "application_protocols",
        ],
    ),
    ("envoy.config.listener.v3.Filter", &["name", "typed_config"]),
    // HTTP connection manager
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
        &[
            "rds",
            "codec_type",
            "stat_prefix",
            "route_config",
            "http_filters",
            "server_name",
            "server_header_transformation",
            "access_log",
            "use_remote_address",
            "skip_xff_append",
            "via",
            "generate_request_id",
            "preserve_external_request_id",
            "always_set_request_id_in_response",
            "strip_matching_host_port",
            "strip_any_host_port",
            "max_request_headers_kb",
            "upgrade_configs",
            "common_http_protocol_options",
            "http_protocol_options",
            "normalize_path",
            "merge_slashes",
            "stream_idle_timeout",
            "request_timeout",
        ],
    ),
    (
        "envoy.config.core.v3.HttpProtocolOptions",
        &[
            "idle_timeout",
            "max_stream_duration",
            "max_requests_per_connection",
        ],
    ),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager.UpgradeConfig",
        &["upgrade_type", "enabled"],
    ),
    (
        "envoy.extensions.filters.network.http_connection_manager.v3.HttpFilter",
        &["name", "typed_config", "is_optional"],
    ),
    (
        "envoy.extensions.filters.http.router.v3.Router",
        &["suppress_envoy_headers"],
    ),
    // Fault injection
    (
        "envoy.extensions.filters.http.fault.v3.HTTPFault",
        &[
            "delay",
            "abort",
            "upstream_cluster",
            "headers",
            "downstream_nodes",
            "max_active_faults",
        ],
    ),
    (
        "envoy.extensions.filters.common.fault.v3.FaultDelay",
        &["fixed_delay", "header_delay", "percentage"],
    ),
    (
        "envoy.extensions.filters.common.fault.v3.FaultDelay.HeaderDelay",
        &[],
    ),
    (
        "envoy.extensions.filters.http.fault.v3.FaultAbort",
        &[
            "http_status",
            "grpc_status",
            "header_abort",
            "percentage",
            "response_body",
        ],
    ),
    (
        "envoy.extensions.filters.http.fault.v3.FaultAbort.HeaderAbort",
        &[],
    ),
    ("envoy.type.v3.FractionalPercent", &["*"]),
    (
        "envoy.extensions.filters.http.local_ratelimit.v3.LocalRateLimit",
        &[
            "stat_prefix",
            "status",
            "token_bucket",
            "filter_enabled",
            "filter_enforced",
            "request_headers_to_add_when_not_enforced",
            "response_headers_to_add",
            "descriptors",
            "local_rate_limit_per_downstream_connection",
            "rate_limited_as_resource_exhausted",
        ],
    ),
    (
        "envoy.extensions.filters.network.local_ratelimit.v3.LocalRateLimit",
        &["stat_prefix", "token_bucket", "runtime_enabled"],
    ),
    ("envoy.type.v3.TokenBucket", &["*"]),
    ("envoy.type.v3.HttpStatus", &["code"]),
    (
        "envoy.config.core.v3.RuntimeFractionalPercent",
        &["default_value"],
    ),
    // Istio's CORS filter without policies does nothing.
    ("envoy.extensions.filters.http.cors.v3.Cors", &[]),
    (
        "envoy.config.route.v3.FilterConfig",
        &["config", "disabled", "is_optional"],
    ),
    // Routes
    (
        "envoy.config.route.v3.RouteConfiguration",
        &[
            "name",
            "virtual_hosts",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "ignore_port_in_host_matching",
            "validate_clusters",
            "typed_per_filter_config",
        ],
    ),
    (
        "envoy.config.route.v3.VirtualHost",
        &[
            "name",
            "domains",
            "routes",
            "retry_policy",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "typed_per_filter_config",
            "include_request_attempt_count",
            "include_attempt_count_in_response",
        ],
    ),
    (
        "envoy.config.route.v3.Route",
        &[
            "name",
            "match",
            "route",
            "redirect",
            "direct_response",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "decorator",
            "typed_per_filter_config",
            "metadata",
        ],
    ),
    ("envoy.config.route.v3.Decorator", &["*"]),
    ("envoy.config.core.v3.Metadata", &["*"]),
    (
        "envoy.config.route.v3.RouteMatch",
        &[
            "prefix",
            "path",
            "safe_regex",
            "path_separated_prefix",
            "case_sensitive",
            "headers",
            "query_parameters",
            "grpc",
        ],
    ),
    (
        "envoy.config.route.v3.RouteMatch.GrpcRouteMatchOptions",
        &[],
    ),
    (
        "envoy.config.route.v3.HeaderMatcher",
        &[
            "name",
            "exact_match",
            "safe_regex_match",
            "range_match",
            "present_match",
            "prefix_match",
            "suffix_match",
            "contains_match",
            "string_match",
            "invert_match",
            "treat_missing_header_as_empty",
        ],
    ),
    (
        "envoy.config.route.v3.QueryParameterMatcher",
        &["name", "string_match", "present_match"],
    ),
    (
        "envoy.type.matcher.v3.StringMatcher",
        &[
            "exact",
            "prefix",
            "suffix",
            "safe_regex",
            "contains",
            "ignore_case",
        ],
    ),
    (
        "envoy.type.matcher.v3.RegexMatcher",
        &["regex", "google_re2"],
    ),
    ("envoy.type.matcher.v3.RegexMatcher.GoogleRe2", &["*"]),
    (
        "envoy.type.matcher.v3.RegexMatchAndSubstitute",
        &["pattern", "substitution"],
    ),
    ("envoy.type.v3.Int64Range", &["*"]),
    (
        "envoy.config.route.v3.RouteAction",
        &[
            "cluster",
            "cluster_header",
            "weighted_clusters",
            "prefix_rewrite",
            "regex_rewrite",
            "host_rewrite_literal",
            "auto_host_rewrite",
            "host_rewrite_header",
            "timeout",
            "hash_policy",
            "upgrade_configs",
            "retry_policy",
            "idle_timeout",
            "max_grpc_timeout",
            "grpc_timeout_offset",
            "max_stream_duration",
            "priority",
            "request_mirror_policies",
        ],
    ),
    (
        "envoy.config.route.v3.RetryPolicy",
        &[
            "retry_on",
            "num_retries",
            "per_try_timeout",
            "retry_host_predicate",
            "host_selection_retry_max_attempts",
            "retriable_status_codes",
            "retry_back_off",
            "per_try_idle_timeout",
            "retriable_headers",
            "retriable_request_headers",
        ],
    ),
    (
        "envoy.config.route.v3.RouteAction.MaxStreamDuration",
        &["*"],
    ),
    (
        "envoy.config.route.v3.RetryPolicy.RetryHostPredicate",
        &["name", "typed_config"],
    ),
    (
        "envoy.extensions.retry.host.previous_hosts.v3.PreviousHostsPredicate",
        &[],
    ),
    (
        "envoy.config.route.v3.RetryPolicy.RetryBackOff",
        &["base_interval", "max_interval"],
    ),
    (
        "envoy.config.route.v3.RouteAction.UpgradeConfig",
        &["upgrade_type", "enabled"],
    ),
    (
        "envoy.config.route.v3.WeightedCluster",
        &["clusters", "total_weight"],
    ),
    (
        "envoy.config.route.v3.WeightedCluster.ClusterWeight",
        &[
            "name",
            "weight",
            "request_headers_to_add",
            "request_headers_to_remove",
            "response_headers_to_add",
            "response_headers_to_remove",
            "host_rewrite_literal",
        ],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy",
        &[
            "header",
            "cookie",
            "connection_properties",
            "query_parameter",
            "terminal",
        ],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.Header",
        &["header_name"],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.Cookie",
        &["name"],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.ConnectionProperties",
        &["*"],
    ),
    (
        "envoy.config.route.v3.RouteAction.HashPolicy.QueryParameter",
        &["*"],
    ),
    (
        "envoy.config.route.v3.RedirectAction",
        &[
            "https_redirect",
            "scheme_redirect",
            "host_redirect",
            "port_redirect",
            "path_redirect",
            "prefix_rewrite",
            "regex_rewrite",
            "response_code",
            "strip_query",
        ],
    ),
    (
        "envoy.config.route.v3.DirectResponseAction",
        &["status", "body"],
    ),
    (
        "envoy.config.core.v3.DataSource",
        &[
            "filename",
            "inline_bytes",
            "inline_string",
            "environment_variable",
        ],
    ),
    (
        "envoy.config.core.v3.HeaderValueOption",
        &["header", "append", "append_action", "keep_empty_value"],
    ),
    (
        "envoy.config.core.v3.HeaderValue",
        &["key", "value", "raw_value"],
    ),
    // TCP proxy
    (
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy",
        &[
            "stat_prefix",
            "cluster",
            "weighted_clusters",
            "idle_timeout",
            "access_log",
        ],
    ),
    (
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster",
        &["clusters"],
    ),
    (
        "envoy.extensions.filters.network.tcp_proxy.v3.TcpProxy.WeightedCluster.ClusterWeight",
        &["name", "weight"],
    ),
    // Access logs
    (
        "envoy.config.accesslog.v3.AccessLog",
        &["name", "typed_config"],
    ),
    (
        "envoy.extensions.access_loggers.file.v3.FileAccessLog",
        &[
            "path",
            "format",
            "json_format",
            "typed_json_format",
            "log_format",
        ],
    ),
    (
        "envoy.extensions.access_loggers.stream.v3.StdoutAccessLog",
        &["log_format"],
    ),
    (
        "envoy.extensions.access_loggers.stream.v3.StderrAccessLog",
        &["log_format"],
    ),
    (
        "envoy.config.core.v3.SubstitutionFormatString",
        &["text_format", "json_format", "text_format_source"],
    ),
    // Clusters
    (
        "envoy.config.cluster.v3.Cluster",
        &[
            "name",
            "type",
            "lb_policy",
            "connect_timeout",
            "load_assignment",
            "http2_protocol_options",
            "typed_extension_protocol_options",
            "protocol_selection",
            "dns_refresh_rate",
            "dns_lookup_family",
            "ring_hash_lb_config",
            "maglev_lb_config",
            "least_request_lb_config",
            "original_dst_lb_config",
            "alt_stat_name",
            "common_lb_config",
            "circuit_breakers",
            "max_requests_per_connection",
            "outlier_detection",
            "health_checks",
            // Endpoints over ADS (the xDS client); `metadata` is informational (Istio's
            // `istio.config`): no weft filter reads it, so honouring it is ignoring it.
            "eds_cluster_config",
            "metadata",
        ],
    ),
    (
        "envoy.config.cluster.v3.OutlierDetection",
        &[
            "consecutive_5xx",
            "consecutive_gateway_failure",
            "consecutive_local_origin_failure",
            "split_external_local_origin_errors",
            "interval",
            "base_ejection_time",
            "max_ejection_time",
            "max_ejection_percent",
            "enforcing_consecutive_5xx",
            "enforcing_consecutive_gateway_failure",
            "enforcing_consecutive_local_origin_failure",
            "enforcing_success_rate",
            "enforcing_local_origin_success_rate",
            "success_rate_minimum_hosts",
            "success_rate_request_volume",
            "success_rate_stdev_factor",
            "failure_percentage_threshold",
            "enforcing_failure_percentage",
            "enforcing_failure_percentage_local_origin",
            "failure_percentage_minimum_hosts",
            "failure_percentage_request_volume",
        ],
    ),
    (
        "envoy.config.core.v3.HealthCheck",
        &[
            "timeout",
            "interval",
            "unhealthy_threshold",
            "healthy_threshold",
            "http_health_check",
            "tcp_health_check",
        ],
    ),
    (
        "envoy.config.core.v3.HealthCheck.HttpHealthCheck",
        &["host", "path", "expected_statuses"],
    ),
    (
        "envoy.config.core.v3.HealthCheck.TcpHealthCheck",
        &["send", "receive"],
    ),
    ("envoy.config.core.v3.HealthCheck.Payload", &["*"]),
    ("envoy.config.cluster.v3.CircuitBreakers", &["thresholds"]),
    (
        "envoy.config.cluster.v3.CircuitBreakers.Thresholds",
        &[
            "priority",
            "max_connections",
            "max_pending_requests",
            "max_requests",
            "max_retries",
            "retry_budget",
            "track_remaining",
        ],
    ),
    (
        "envoy.config.cluster.v3.CircuitBreakers.Thresholds.RetryBudget",
        &["budget_percent", "min_retry_concurrency"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.CommonLbConfig",
        &["healthy_panic_threshold"],
    ),
    ("envoy.type.v3.Percent", &["*"]),
    (
        "envoy.config.cluster.v3.Cluster.RingHashLbConfig",
        &["minimum_ring_size", "maximum_ring_size"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.MaglevLbConfig",
        &["table_size"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.LeastRequestLbConfig",
        &["choice_count"],
    ),
    (
        "envoy.config.cluster.v3.Cluster.OriginalDstLbConfig",
        &[
            "use_http_header",
            "http_header_name",
            "upstream_port_override",
        ],
    ),
    // Only the choice of protocol is honoured; tuning knobs are reported.
    ("envoy.config.core.v3.Http2ProtocolOptions", &[]),
    // Downstream (the connection manager's `http_protocol_options`), the three below are
    // honoured; upstream (a cluster's), they mean nothing, as in Envoy.
    (
        "envoy.config.core.v3.Http1ProtocolOptions",
        &[
            "accept_http_10",
            "default_host_for_http_10",
            "allow_custom_methods",
        ],
    ),
    (
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
        &[
            "explicit_http_config",
            "use_downstream_protocol_config",
            "auto_config",
            "common_http_protocol_options",
        ],
    ),
    (
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.ExplicitHttpConfig",
        &["http_protocol_options", "http2_protocol_options"],
    ),
    (
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.UseDownstreamHttpConfig",
        &["http_protocol_options", "http2_protocol_options"],
    ),
    (
        "envoy.extensions.upstreams.http.v3.HttpProtocolOptions.AutoHttpConfig",
        &["http_protocol_options", "http2_protocol_options"],
    ),
    (
        "envoy.config.endpoint.v3.ClusterLoadAssignment",
        &["cluster_name", "endpoints"],
    ),
    (
        "envoy.config.endpoint.v3.LocalityLbEndpoints",
        &[
            "locality",
            "lb_endpoints",
            "load_balancing_weight",
            "priority",
        ],
    ),
    ("envoy.config.core.v3.Locality", &["*"]),
    (
        "envoy.config.endpoint.v3.LbEndpoint",
        &["endpoint", "health_status", "load_balancing_weight"],
    ),
    (
        "envoy.config.endpoint.v3.Endpoint",
        &["address", "hostname"],
    ),
]);
