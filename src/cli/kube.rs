//! Building a Kubernetes client from [`KubeArgs`].

use kube::config::{KubeConfigOptions, Kubeconfig};
use thiserror::Error;

use super::KubeArgs;

/// Why no Kubernetes client could be built.
#[derive(Debug, Error)]
pub enum KubeClientError {
    /// The kubeconfig file could not be read or parsed.
    #[error("cannot read kubeconfig {path}: {source}")]
    Kubeconfig {
        /// The file named by `--kubeconfig`.
        path: String,
        /// What went wrong.
        source: kube::config::KubeconfigError,
    },
    /// No usable configuration was found (no kubeconfig, not in a cluster).
    #[error("no Kubernetes configuration: {0}")]
    Infer(#[from] kube::config::InferConfigError),
    /// The configuration was read but the client could not be built (bad TLS material).
    #[error("cannot build a Kubernetes client: {0}")]
    Client(#[from] kube::Error),
}

impl KubeArgs {
    /// A client for the configured cluster. Must be called inside a tokio runtime.
    pub async fn client(&self) -> Result<kube::Client, KubeClientError> {
        let options = KubeConfigOptions {
            context: self.kube_context.clone(),
            ..KubeConfigOptions::default()
        };
        let config = match &self.kubeconfig {
            Some(path) => {
                let file =
                    Kubeconfig::read_from(path).map_err(|source| KubeClientError::Kubeconfig {
                        path: path.display().to_string(),
                        source,
                    })?;
                kube::Config::from_custom_kubeconfig(file, &options)
                    .await
                    .map_err(|source| KubeClientError::Kubeconfig {
                        path: path.display().to_string(),
                        source,
                    })?
            }
            None => kube::Config::infer().await?,
        };
        Ok(kube::Client::try_from(config)?)
    }
}
