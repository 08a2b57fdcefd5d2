//! Turning a [`DeviceSource`] into a stream of inventory changes for the publisher.

use std::sync::Arc;
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinHandle;
use tokio_util::sync::CancellationToken;
use tracing::{info, warn};

use super::{DeviceSource, DiscoveryError};
use crate::model::Inventory;

/// Reads `source` once (an error here is returned: the plugin cannot start without GPUs to
/// describe), then again every `interval` on a blocking thread until `shutdown`, sending the
/// inventory on the returned channel whenever it differs. A failed later read is logged and
/// the last good inventory kept, so a transient NVML error does not withdraw every device.
pub async fn poll(
    source: Arc<dyn DeviceSource>,
    interval: Duration,
    shutdown: CancellationToken,
) -> Result<(watch::Receiver<Inventory>, JoinHandle<()>), DiscoveryError> {
    let first = read(Arc::clone(&source)).await?;
    info!(source = %source.describe(), gpus = first.gpus.len(), "GPUs discovered");
    let (tx, rx) = watch::channel(first);
    let task = tokio::spawn(async move {
        loop {
            tokio::select! {
                () = shutdown.cancelled() => return,
                () = tokio::time::sleep(interval) => {}
            }
            match read(Arc::clone(&source)).await {
                Ok(inventory) => {
                    let changed = tx.send_if_modified(|current| {
                        if *current == inventory {
                            false
                        } else {
                            *current = inventory;
                            true
                        }
                    });
                    if changed {
                        info!(source = %source.describe(), "GPU inventory changed");
                    }
                    if tx.is_closed() {
                        return;
                    }
                }
                Err(error) => {
                    warn!(%error, "GPU discovery failed; keeping the last inventory");
                }
            }
        }
    });
    Ok((rx, task))
}

async fn read(source: Arc<dyn DeviceSource>) -> Result<Inventory, DiscoveryError> {
    match tokio::task::spawn_blocking(move || source.inventory()).await {
        Ok(result) => result,
        // The blocking read panicked (a bug in a source); report it as a failed read.
        Err(join) => Err(DiscoveryError::Panicked(join.to_string())),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::discovery::{FakeProfile, FakeSource};

    fn yaml(gpus: usize) -> String {
        let mut inv = FakeProfile::L4x4.inventory("n");
        inv.gpus.truncate(gpus);
        serde_saphyr::to_string(&inv).unwrap()
    }

    #[tokio::test]
    async fn changes_to_the_source_reach_the_receiver() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), yaml(4)).unwrap();
        let source: Arc<dyn DeviceSource> = Arc::new(FakeSource::from_file(file.path()).unwrap());
        let shutdown = CancellationToken::new();
        let (mut rx, task) = poll(source, Duration::from_millis(10), shutdown.clone())
            .await
            .unwrap();
        assert_eq!(rx.borrow_and_update().gpus.len(), 4);

        // A broken file keeps the last inventory; a fixed one is picked up.
        std::fs::write(file.path(), "gpus: [").unwrap();
        tokio::time::sleep(Duration::from_millis(50)).await;
        assert!(!rx.has_changed().unwrap());
        std::fs::write(file.path(), yaml(2)).unwrap();
        tokio::time::timeout(Duration::from_secs(5), rx.changed())
            .await
            .unwrap()
            .unwrap();
        assert_eq!(rx.borrow().gpus.len(), 2);

        shutdown.cancel();
        task.await.unwrap();
    }

    #[tokio::test]
    async fn a_first_read_that_fails_is_an_error() {
        let file = tempfile::NamedTempFile::new().unwrap();
        std::fs::write(file.path(), yaml(1)).unwrap();
        let source = FakeSource::from_file(file.path()).unwrap();
        std::fs::remove_file(file.path()).unwrap();
        let err = poll(
            Arc::new(source),
            Duration::from_secs(1),
            CancellationToken::new(),
        )
        .await
        .unwrap_err();
        assert!(
            err.to_string().contains("cannot read inventory file"),
            "{err}"
        );
    }
}
