//! Analysis across resources, like `istioctl analyze`. (Being written.)

use crate::{Diagnostic, Resource};

/// Every cross-resource finding for a set of valid resources.
pub fn analyze(_resources: &[Resource]) -> Vec<Diagnostic> {
    Vec::new()
}
