//! Shared e2e helpers: the gate on `TESSERA_E2E_KUBECONFIG` and client construction.

use kube::config::{KubeConfigOptions, Kubeconfig};

/// The variable naming the kubeconfig of the cluster to test against.
pub const KUBECONFIG_VAR: &str = "TESSERA_E2E_KUBECONFIG";

/// A client for the e2e cluster, or `None` (after printing why) when the variable is unset.
pub async fn client_or_skip(test: &str) -> Option<kube::Client> {
    let Some(path) = std::env::var_os(KUBECONFIG_VAR) else {
        println!("skipped {test}: {KUBECONFIG_VAR} is not set");
        return None;
    };
    let file = Kubeconfig::read_from(&path)
        .unwrap_or_else(|e| panic!("{KUBECONFIG_VAR}={}: {e}", path.to_string_lossy()));
    let config = kube::Config::from_custom_kubeconfig(file, &KubeConfigOptions::default())
        .await
        .unwrap_or_else(|e| panic!("{KUBECONFIG_VAR}: {e}"));
    Some(kube::Client::try_from(config).unwrap_or_else(|e| panic!("kube client: {e}")))
}
