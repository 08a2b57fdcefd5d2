//! Preconditions every other e2e test relies on: a 1.34+ API server serving resource.k8s.io/v1.

use crate::support::cluster_client;

#[tokio::test]
#[ignore = "needs a cluster: TESSERA_E2E_KUBECONFIG=<file> cargo test --test e2e -- --ignored"]
async fn api_server_is_1_34_or_later_and_serves_resource_v1() {
    let client = cluster_client("api_server_is_1_34_or_later_and_serves_resource_v1").await;
    let version = client.apiserver_version().await.expect("server version");
    let minor: u32 = version
        .minor
        .trim_end_matches('+')
        .parse()
        .expect("numeric minor version");
    assert!(
        version.major == "1" && minor >= 34,
        "tessera needs Kubernetes 1.34+, server is {}.{}",
        version.major,
        version.minor
    );
    let groups = client.list_api_groups().await.expect("API groups");
    let resource = groups
        .groups
        .iter()
        .find(|g| g.name == "resource.k8s.io")
        .expect("resource.k8s.io is served");
    assert!(
        resource.versions.iter().any(|v| v.version == "v1"),
        "resource.k8s.io/v1 is not served: {:?}",
        resource.versions
    );
}
