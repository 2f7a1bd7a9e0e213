//! Outages a test causes on its own [`PgCluster`]: the server stops (and starts again with
//! [`PgCluster::start`]), restarts, or stops answering while its connections stay open.

use super::{PG_BIN_ENV, PgCluster, pg_bin_dir};
use std::path::PathBuf;
use std::process::Command;

/// PostgreSQL's bin directory, for tests that fail rather than skip without it: panics when
/// there is no `pg_ctl` in it.
pub(crate) fn expect_pg_binaries() -> PathBuf {
    let bin = pg_bin_dir();
    assert!(
        bin.join("pg_ctl").exists(),
        "no pg_ctl in {} (set {PG_BIN_ENV} to PostgreSQL's bin directory)",
        bin.display()
    );
    bin
}

impl PgCluster {
    /// Stops the server, disconnecting every client (`-m fast`), and waits until it is down.
    pub(crate) fn stop(&mut self) {
        let data = self.data();
        self.run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .args(["-m", "fast", "-w", "-t", "30", "stop"]),
            "pg_ctl stop",
        );
        self.running = false;
    }

    /// Restarts the server (`-m fast`: every client is disconnected) and waits until it
    /// accepts connections.
    pub(crate) fn restart(&mut self) {
        let options = self.server_options();
        let (data, log) = (self.data(), self.log());
        // Set first: a restart that times out may still leave a server to stop.
        self.running = true;
        self.run(
            self.tool("pg_ctl")
                .arg("-D")
                .arg(&data)
                .arg("-l")
                .arg(&log)
                .args(["-o", &options, "-m", "fast", "-w", "-t", "30", "restart"]),
            "pg_ctl restart",
        );
    }

    /// Stops (SIGSTOP) the server and every backend: connections stay open but nothing
    /// answers, as in a network partition or a hung host. `Drop` thaws it.
    pub(crate) fn freeze(&mut self) {
        let pid_file = std::fs::read_to_string(self.data().join("postmaster.pid"))
            .expect("read postmaster.pid");
        let postmaster = pid_file
            .lines()
            .next()
            .expect("the postmaster's pid")
            .trim()
            .to_owned();
        let children = Command::new("pgrep")
            .args(["-P", &postmaster])
            .output()
            .expect("run pgrep");
        let mut pids = vec![postmaster];
        pids.extend(
            String::from_utf8_lossy(&children.stdout)
                .split_whitespace()
                .map(str::to_owned),
        );
        self.run(
            Command::new("kill").arg("-STOP").args(&pids),
            "stop the PostgreSQL processes",
        );
        self.frozen = pids;
    }

    /// Continues what [`Self::freeze`] stopped; nothing when nothing is frozen.
    pub(crate) fn thaw(&mut self) {
        if self.frozen.is_empty() {
            return;
        }
        let pids = std::mem::take(&mut self.frozen);
        let continued = Command::new("kill").arg("-CONT").args(&pids).output();
        if !continued.is_ok_and(|o| o.status.success()) {
            eprintln!("warning: could not continue the PostgreSQL processes {pids:?}");
        }
    }
}
