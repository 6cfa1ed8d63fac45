//! The periodic backup: [`run_backup_once`] on a background thread.

use std::path::PathBuf;
use std::sync::{Arc, Condvar, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use super::format::validate_node_name;
use super::writer::run_backup_once;
use crate::error::{Result, StoreError};
use crate::store::Store;

/// Default backup period (the original's `backup_period_seconds` default).
pub const DEFAULT_PERIOD: Duration = Duration::from_secs(300);
/// Default backup directory (the original's `backup_dir` default).
pub const DEFAULT_BACKUP_DIR: &str = "./backups";

/// Settings of the periodic backup (`backup_dir`, `backup_period_seconds`, node name).
#[derive(Clone, Debug)]
pub struct BackupConfig {
    /// Directory receiving the backup files.
    pub dir: PathBuf,
    /// Node name used in file names.
    pub node_name: String,
    /// Time between backups.
    pub period: Duration,
}

impl BackupConfig {
    /// Defaults: `./backups`, every 300 s.
    pub fn new(node_name: impl Into<String>) -> Self {
        BackupConfig {
            dir: PathBuf::from(DEFAULT_BACKUP_DIR),
            node_name: node_name.into(),
            period: DEFAULT_PERIOD,
        }
    }
}

/// Runs [`run_backup_once`] every `period` on a background thread until stopped or dropped.
/// Failures are logged and retried at the next period.
pub struct BackupScheduler {
    stop: Arc<(Mutex<bool>, Condvar)>,
    handle: Option<JoinHandle<()>>,
}

impl BackupScheduler {
    /// Starts the thread. The first backup runs after one period.
    pub fn start(store: Arc<Store>, config: BackupConfig) -> Result<Self> {
        validate_node_name(&config.node_name)?;
        let stop = Arc::new((Mutex::new(false), Condvar::new()));
        let signal = Arc::clone(&stop);
        let dir = config.dir.clone();
        let handle = std::thread::Builder::new()
            .name("mpcium-backup".to_owned())
            .spawn(move || {
                let (lock, cvar) = &*signal;
                let mut stopped = lock.lock().unwrap_or_else(|p| p.into_inner());
                loop {
                    if *stopped {
                        return;
                    }
                    let (guard, _) =
                        cvar.wait_timeout(stopped, config.period).unwrap_or_else(|p| p.into_inner());
                    stopped = guard;
                    if *stopped {
                        return;
                    }
                    if let Err(e) = run_backup_once(&store, &config.dir, &config.node_name) {
                        tracing::error!(error = %e, "periodic backup failed");
                    }
                }
            })
            .map_err(|e| StoreError::io(dir, e))?;
        Ok(BackupScheduler { stop, handle: Some(handle) })
    }

    /// Stops the thread and waits for a running backup to finish.
    pub fn stop(mut self) {
        self.shutdown();
    }

    fn shutdown(&mut self) {
        let (lock, cvar) = &*self.stop;
        *lock.lock().unwrap_or_else(|p| p.into_inner()) = true;
        cvar.notify_all();
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

impl Drop for BackupScheduler {
    fn drop(&mut self) {
        self.shutdown();
    }
}
