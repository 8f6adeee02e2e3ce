//! The `ucm` binary: parses the command line, runs it, and maps the outcome to an exit code.

use std::process::ExitCode;

use clap::Parser;

/// mimalloc: a run's contacts are allocated by the parser threads and freed by the merge and
/// writer threads, which glibc's malloc paid for in locks (1M contacts: fresh import 6.7 s ->
/// 4.4 s; see docs/performance.md).
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// mimalloc 3's option numbers (`mi_option_e` in mimalloc.h; the -sys crate names only some).
const MI_OPTION_ARENA_EAGER_COMMIT: libmimalloc_sys::mi_option_t = 4;
const MI_OPTION_PURGE_DELAY: libmimalloc_sys::mi_option_t = 15;
const PURGE_DELAY_MS: std::ffi::c_long = 0;

/// Arenas are committed as they are used, and freed memory goes back to the system at once
/// (mimalloc's default waits a second): with the defaults an unchanged 1M-contact re-import
/// peaked at 202 MB instead of 115-118 MB. A 100 ms delay was 5-9% faster on the imports but
/// let a 57 MB download peak at 53 MB (network buffers freed on another thread waiting to be
/// purged; `tests/fetch.rs` holds it under 40 MiB), and 10 ms still at 43 MB. Run before
/// `main` (from `.init_array`), as the first arena is made by the first allocation and takes
/// the options of that moment.
extern "C" fn configure_allocator() {
    // SAFETY: plain setters of mimalloc's global options, valid at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, PURGE_DELAY_MS);
    }
}

#[cfg(target_os = "linux")]
#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

fn main() -> ExitCode {
    // Elsewhere (no `.init_array`), as early as `main` allows.
    #[cfg(not(target_os = "linux"))]
    configure_allocator();
    let cli = ucm::cli::Cli::parse();
    match ucm::cli::run(cli) {
        Ok(code) => code,
        Err(error) => {
            eprintln!("error: {}", message(&error));
            ExitCode::FAILURE
        }
    }
}

/// The error and its causes, each cause once: most library errors already say their cause.
fn message(error: &anyhow::Error) -> String {
    let mut text = String::new();
    for cause in error.chain() {
        let cause = cause.to_string();
        if !text.contains(&cause) {
            if !text.is_empty() {
                text.push_str(": ");
            }
            text.push_str(&cause);
        }
    }
    text
}

#[cfg(test)]
mod tests {
    use super::*;

    // Set before any test runs only where `.init_array` sets them.
    #[cfg(target_os = "linux")]
    #[test]
    fn the_allocator_options_are_set_and_numbered_as_mimalloc_3_numbers_them() {
        // SAFETY: reads of mimalloc's global options.
        let get = |option| unsafe { libmimalloc_sys::mi_option_get(option) };
        assert_eq!(get(MI_OPTION_ARENA_EAGER_COMMIT), 0);
        assert_eq!(get(MI_OPTION_PURGE_DELAY), PURGE_DELAY_MS);
        // Their neighbours keep their documented defaults (mimalloc 3's options.c), so the
        // constants name the options meant, in the table mimalloc 3 numbers this way.
        let neighbours = [
            (3, 1),    // deprecated_eager_commit
            (5, 1),    // purge_decommits
            (14, 1),   // deprecated_eager_commit_delay
            (16, 0),   // use_numa_nodes
            (18, 100), // os_tag
            (19, 32),  // max_errors
            (20, 32),  // max_warnings
        ];
        for (option, default) in neighbours {
            assert_eq!(get(option), default, "mimalloc option {option}");
        }
    }
}
