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

/// Memory goes back to the system as soon as it is freed, and arenas are committed as they are
/// used: with mimalloc's defaults an unchanged 1M-contact re-import peaked at 202 MB instead
/// of 124 MB. Run before `main` (from `.init_array`), as the first arena is made by the first
/// allocation and takes the options of that moment.
extern "C" fn configure_allocator() {
    // SAFETY: plain setters of mimalloc's global options, valid at any time.
    unsafe {
        libmimalloc_sys::mi_option_set(MI_OPTION_ARENA_EAGER_COMMIT, 0);
        libmimalloc_sys::mi_option_set(MI_OPTION_PURGE_DELAY, 0);
    }
}

#[used]
#[unsafe(link_section = ".init_array")]
static CONFIGURE_ALLOCATOR: extern "C" fn() = configure_allocator;

fn main() -> ExitCode {
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

    #[test]
    fn the_allocator_option_numbers_name_the_options_they_set() {
        // Set before main (their defaults in mimalloc's options.c: eager commit 2, purge
        // delay 1000 ms). SAFETY: reads of mimalloc's global options.
        let (eager, delay) = unsafe {
            (
                libmimalloc_sys::mi_option_get(MI_OPTION_ARENA_EAGER_COMMIT),
                libmimalloc_sys::mi_option_get(MI_OPTION_PURGE_DELAY),
            )
        };
        assert_eq!((eager, delay), (0, 0));
    }
}
