//! What a command prints on stderr while it works, beside its progress bar.

use auditstream::redact::Escaped;
use indicatif::ProgressBar;

/// Prints one line on stderr, above the progress bar, with control characters escaped
/// ([`auditstream::redact::escape_controls`]): a message id, a file name or a server's words in it
/// can neither start a line of their own (a forged `failed …`) nor drive the terminal.
pub fn say(progress: &ProgressBar, line: &str) {
    progress.suspend(|| eprintln!("{}", Escaped(line)));
}
