//! CPU-bound work called from async code (an Argon2 verification, an unindexed search's
//! filter over a batch of rows): run off the runtime's worker threads so the tasks that
//! answer everyone else keep running.

/// Runs `work` with `tokio::task::block_in_place` on a multi-threaded runtime (as `ucm
/// serve`'s is: the worker's other tasks move to another thread meanwhile); elsewhere (the
/// CLI, a current-thread test runtime, no runtime) just runs it.
pub fn off_the_runtime<T>(work: impl FnOnce() -> T) -> T {
    match tokio::runtime::Handle::try_current().map(|h| h.runtime_flavor()) {
        Ok(tokio::runtime::RuntimeFlavor::MultiThread) => tokio::task::block_in_place(work),
        _ => work(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn work_runs_with_or_without_a_runtime() {
        assert_eq!(off_the_runtime(|| 2 + 2), 4);
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .build()
            .unwrap();
        assert_eq!(runtime.block_on(async { off_the_runtime(|| 3) }), 3);
        let current = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        assert_eq!(current.block_on(async { off_the_runtime(|| 5) }), 5);
    }
}
