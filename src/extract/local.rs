//! Local sources: a file named by a path is read only when it is a regular file.
//!
//! A named pipe, a character device or a socket can block a reader forever (opening a FIFO
//! waits for a writer; reading it waits for data that may never come), which once wedged a
//! pipeline in the service and blocked SIGTERM. Every local source ucm reads (`validate`,
//! `import`, a `file://` or path source that `fetch` copies) is opened here: without blocking,
//! then refused unless it is a regular file, so a stream must first be saved to a file.

use std::fs::File;
use std::io;
use std::path::Path;

/// Opens `path` for reading if it is a regular file (symbolic links followed). Anything else
/// is refused with an [`io::ErrorKind::InvalidInput`] error that says what it is and what to
/// do; the open itself never waits (a FIFO without a writer is opened non-blocking, then
/// refused).
pub fn open_regular(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.read(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.custom_flags(libc::O_NONBLOCK);
    }
    let file = options.open(path)?;
    let kind = file.metadata()?.file_type();
    if kind.is_file() {
        #[cfg(unix)]
        clear_nonblocking(&file)?;
        return Ok(file);
    }
    Err(io::Error::new(
        io::ErrorKind::InvalidInput,
        format!(
            "not a regular file ({}): ucm reads local sources from regular files only; \
             save the stream to a file first and name that file",
            describe(&kind)
        ),
    ))
}

/// What a non-regular file is, in words.
fn describe(kind: &std::fs::FileType) -> &'static str {
    #[cfg(unix)]
    {
        use std::os::unix::fs::FileTypeExt;
        if kind.is_fifo() {
            return "a named pipe";
        }
        if kind.is_char_device() {
            return "a character device";
        }
        if kind.is_block_device() {
            return "a block device";
        }
        if kind.is_socket() {
            return "a socket";
        }
    }
    if kind.is_dir() {
        "a directory"
    } else {
        "not a file"
    }
}

/// A regular file ignores O_NONBLOCK for reads; cleared all the same so the descriptor
/// behaves as a plain open would.
#[cfg(unix)]
fn clear_nonblocking(file: &File) -> io::Result<()> {
    use std::os::fd::AsRawFd;
    let fd = file.as_raw_fd();
    // SAFETY: fcntl on a descriptor this function's caller owns, with integer arguments.
    let flags = unsafe { libc::fcntl(fd, libc::F_GETFL) };
    if flags < 0 || unsafe { libc::fcntl(fd, libc::F_SETFL, flags & !libc::O_NONBLOCK) } < 0 {
        return Err(io::Error::last_os_error());
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_regular_file_opens() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("contacts.xml");
        std::fs::write(&path, "<x/>").unwrap();
        let mut text = String::new();
        io::Read::read_to_string(&mut open_regular(&path).unwrap(), &mut text).unwrap();
        assert_eq!(text, "<x/>");
    }

    #[test]
    fn a_directory_is_refused_with_what_it_is() {
        let dir = tempfile::tempdir().unwrap();
        let e = open_regular(dir.path()).unwrap_err();
        assert_eq!(e.kind(), io::ErrorKind::InvalidInput);
        assert!(
            e.to_string().contains("not a regular file (a directory)"),
            "{e}"
        );
    }

    #[cfg(unix)]
    #[test]
    fn a_named_pipe_without_a_writer_is_refused_at_once() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("pipe.xml");
        let c_path = std::ffi::CString::new(path.as_os_str().as_encoded_bytes()).unwrap();
        // SAFETY: mkfifo with a NUL-terminated path.
        assert_eq!(unsafe { libc::mkfifo(c_path.as_ptr(), 0o600) }, 0);
        let e = open_regular(&path).unwrap_err();
        assert!(e.to_string().contains("(a named pipe)"), "{e}");
        assert!(
            e.to_string().contains("save the stream to a file first"),
            "{e}"
        );
    }

    #[test]
    fn a_character_device_is_refused() {
        let e = open_regular(Path::new("/dev/zero")).unwrap_err();
        assert!(e.to_string().contains("(a character device)"), "{e}");
    }
}
