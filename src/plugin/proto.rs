//! The generated kubelet gRPC types and services (see `proto/README.md`).

/// `k8s.io.kubelet.pkg.apis.dra.v1`: the stable DRAPlugin service.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod dra_v1 {
    include!(concat!(
        env!("OUT_DIR"),
        "/k8s.io.kubelet.pkg.apis.dra.v1.rs"
    ));
}

/// `k8s.io.kubelet.pkg.apis.dra.v1beta1`: the DRAPlugin service for older kubelets.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod dra_v1beta1 {
    include!(concat!(
        env!("OUT_DIR"),
        "/k8s.io.kubelet.pkg.apis.dra.v1beta1.rs"
    ));
}

/// `pluginregistration`: how the kubelet's plugin watcher learns about the plugin.
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod registration {
    include!(concat!(env!("OUT_DIR"), "/pluginregistration.rs"));
}

/// `v1alpha1`: the DRAResourceHealth service (device health stream, KEP-4680).
#[allow(missing_docs, clippy::all, clippy::pedantic)]
pub mod dra_health_v1alpha1 {
    include!(concat!(env!("OUT_DIR"), "/v1alpha1.rs"));
}
