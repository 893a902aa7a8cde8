//! Per-route HTTP filter configuration (`typed_per_filter_config` on routes, virtual hosts
//! and route tables): the most specific level wins, as in Envoy.

use crate::config::fault::FaultConfig;
use crate::config::ratelimit::{HTTP_LOCAL_RATELIMIT, HttpRateLimit};
use crate::config::util::decode_any;
use crate::error::{At, ConfigError};
use envoy_types::pb::envoy::config::route::v3::FilterConfig;
use envoy_types::pb::google::protobuf::Any;
use std::collections::HashMap;
use std::sync::Arc;

/// `envoy.extensions.filters.http.fault.v3.HTTPFault`.
pub const HTTP_FAULT: &str = "type.googleapis.com/envoy.extensions.filters.http.fault.v3.HTTPFault";
/// `envoy.config.route.v3.FilterConfig` (a wrapper that can disable a filter per route).
pub const FILTER_CONFIG: &str = "type.googleapis.com/envoy.config.route.v3.FilterConfig";

/// A per-route setting for one filter.
#[derive(Debug, Clone)]
pub enum Override<T> {
    Config(T),
    /// `FilterConfig { disabled: true }`: the filter does nothing on this route.
    Disabled,
}

/// The filter overrides of one level (route, virtual host or route table).
#[derive(Debug, Clone, Default)]
pub struct FilterOverrides {
    pub fault: Option<Override<Arc<FaultConfig>>>,
    pub ratelimit: Option<Override<Arc<HttpRateLimit>>>,
}

impl FilterOverrides {
    /// Converts `typed_per_filter_config`; an unknown filter type is an error naming its key.
    pub(crate) fn convert(map: &HashMap<String, Any>) -> Result<FilterOverrides, ConfigError> {
        let mut out = FilterOverrides::default();
        // Sorted so the first error reported does not depend on hash order.
        let mut keys: Vec<&String> = map.keys().collect();
        keys.sort();
        for key in keys {
            let at = || format!("typed_per_filter_config[{key:?}]");
            let any = &map[key];
            let (any, disabled) = if any.type_url == FILTER_CONFIG {
                let fc: FilterConfig = decode_any(any, FILTER_CONFIG).at(at())?;
                match fc.config {
                    Some(inner) => (inner, fc.disabled),
                    None if fc.disabled => {
                        // A bare `disabled` names no type: the key says which filter.
                        if key.contains("fault") {
                            out.fault = Some(Override::Disabled);
                            continue;
                        }
                        if key.contains("local_ratelimit") {
                            out.ratelimit = Some(Override::Disabled);
                            continue;
                        }
                        return Err(ConfigError::new(
                            "a disabled FilterConfig without config must be keyed by a filter weft knows",
                        )
                        .at(at()));
                    }
                    None => continue,
                }
            } else {
                (any.clone(), false)
            };
            match any.type_url.as_str() {
                HTTP_FAULT => {
                    out.fault = Some(if disabled {
                        Override::Disabled
                    } else {
                        let pb = decode_any(&any, HTTP_FAULT).at(at())?;
                        Override::Config(Arc::new(FaultConfig::try_from(&pb).at(at())?))
                    });
                }
                HTTP_LOCAL_RATELIMIT => {
                    out.ratelimit = Some(if disabled {
                        Override::Disabled
                    } else {
                        let pb = decode_any(&any, HTTP_LOCAL_RATELIMIT).at(at())?;
                        Override::Config(Arc::new(HttpRateLimit::try_from(&pb).at(at())?))
                    });
                }
                other => {
                    return Err(ConfigError::new(format!(
                        "per-route config of type {other} is not supported"
                    ))
                    .at(at()));
                }
            }
        }
        Ok(out)
    }
}
