//! The progress bar shown on stderr while a run parses and loads, when stderr is a terminal.

use indicatif::{ProgressBar, ProgressStyle};

use crate::extract::fetch::DownloadProgress;
use crate::pipeline::Progress;

/// An indicatif bar over the source's bytes.
pub struct TerminalProgress {
    bar: ProgressBar,
}

impl TerminalProgress {
    pub fn new() -> TerminalProgress {
        let bar = ProgressBar::new(0);
        bar.set_style(
            ProgressStyle::with_template(
                "{spinner} {msg} [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}",
            )
            .expect("the template is valid")
            .progress_chars("=> "),
        );
        bar.set_message("importing");
        TerminalProgress { bar }
    }
}

impl Progress for TerminalProgress {
    fn start(&self, total: u64) {
        self.bar.set_length(total);
    }

    fn advance(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}

/// A bar over the download's bytes, or a spinner when the server does not say its length.
pub struct DownloadBar {
    bar: ProgressBar,
}

impl DownloadBar {
    pub fn new() -> DownloadBar {
        DownloadBar {
            bar: ProgressBar::hidden(),
        }
    }
}

impl DownloadProgress for DownloadBar {
    fn start(&self, total: Option<u64>) {
        self.bar
            .set_draw_target(indicatif::ProgressDrawTarget::stderr());
        match total {
            Some(total) => {
                self.bar.set_length(total);
                self.bar.set_style(
                    ProgressStyle::with_template("{spinner} downloading [{bar:30}] {bytes}/{total_bytes} {bytes_per_sec} eta {eta}")
                        .expect("the template is valid")
                        .progress_chars("=> "),
                );
            }
            None => {
                self.bar.set_style(
                    ProgressStyle::with_template("{spinner} downloading {bytes} {bytes_per_sec}")
                        .expect("the template is valid"),
                );
                self.bar
                    .enable_steady_tick(std::time::Duration::from_millis(120));
            }
        }
        self.bar.set_position(0);
    }

    fn advance(&self, bytes: u64) {
        self.bar.set_position(bytes);
    }

    fn finish(&self) {
        self.bar.finish_and_clear();
    }
}
