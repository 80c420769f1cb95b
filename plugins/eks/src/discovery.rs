//! API availability by discovery ([PLG-05]): whether a group-version lists a kind under its
//! plural. A missing API is an answer, not an error: the plugins report it and look again.

use kube::Client;
use kube::api::ApiResource;

/// Whether discovery lists `resource` (its group-version, kind and plural).
pub async fn served(client: &Client, resource: &ApiResource) -> bool {
    match client.list_api_group_resources(&resource.api_version).await {
        Ok(list) => list
            .resources
            .iter()
            .any(|r| r.kind == resource.kind && r.name == resource.plural),
        Err(error) => {
            tracing::debug!(%error, api = %resource.api_version, kind = %resource.kind, "API discovery");
            false
        }
    }
}
