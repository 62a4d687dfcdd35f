//! `auditstream digest` and `auditstream verify`: the tamper-evident archive by hand
//! (`docs/integrity.md`). The digest step is the one the digest function runs every hour.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{bail, Context, Result};
use auditstream::aws::kms::{KmsSigner, DIGEST_KEY_VAR};
use auditstream::config::{EnvExt, ProcessEnv};
use auditstream::destinations::dir::{self, DirStore};
use auditstream::destinations::s3::{S3Settings, S3Store};
use auditstream::integrity::archive::Archive;
use auditstream::integrity::digest::{default_until, extend_chain};
use auditstream::integrity::layout;
use auditstream::integrity::signature::DigestSigner;
use auditstream::integrity::signature::PublicKey;
use auditstream::integrity::verify::{verify, Window};
use auditstream::pipeline::timestamp::{Now, UtcTime};
use indicatif::{ProgressBar, ProgressStyle};

use crate::destinations::DestSpec;

pub const DIGEST_LONG_ABOUT: &str = "Extend an archive's chain of signed digests up to a time.\n\n\
Each digest covers the interval from the previous digest's end to its own (one per hour; the last up to \
--until), names every batch manifest written in it with its SHA-256, and carries the previous digest's key, \
SHA-256 and signature. An interval without events still gets one. s3:// archives are signed with the AWS KMS \
key named by AUDITSTREAM_DIGEST_KMS_KEY_ID (ECC_NIST_P256), dir: archives with a local Ed25519 key file, \
created on first use. Prints what was written; exits 0, or 2 on an error. See docs/integrity.md.";

pub const VERIFY_LONG_ABOUT: &str = "Check an archive against its chain of signed digests.\n\n\
Walks the digests (checking each signature and link), every manifest they name, and every object those list \
(S3's own SHA-256, no download), and looks for manifests and objects that no digest or manifest lists. \
Each problem is named on stderr with its key (digest missing, altered or badly signed; manifest missing, \
altered or in no digest; object deleted, changed or in no manifest). Prints a one-line summary; exits 0 when \
the archive is intact, 1 when anything is wrong, 2 on an error. See docs/integrity.md.";

/// The signing key of a dir: archive, unless --key-file or AUDITSTREAM_DIGEST_KEY_FILE says otherwise.
const DEFAULT_KEY_FILE: &str = ".config/auditstream/digest-ed25519.pem";

#[derive(clap::Args)]
pub struct DigestArgs {
    /// s3://BUCKET[/PREFIX] or dir:PATH.
    #[arg(value_name = "ARCHIVE")]
    archive: String,
    /// The end of the last interval: a UTC time (2026-11-27T21:00:00Z) or `now` [default: the last full
    /// hour at least 15 minutes ago, when every batch before it has written its manifest].
    #[arg(long, value_name = "TIME|now")]
    until: Option<String>,
    /// dir: only: the Ed25519 key that signs, created there on first use with its public half beside it
    /// (PATH.pub.pem) [default: ~/.config/auditstream/digest-ed25519.pem].
    #[arg(long, value_name = "PATH", env = "AUDITSTREAM_DIGEST_KEY_FILE")]
    key_file: Option<PathBuf>,
}

#[derive(clap::Args)]
pub struct VerifyArgs {
    /// s3://BUCKET[/PREFIX] or dir:PATH.
    #[arg(value_name = "ARCHIVE")]
    archive: String,
    /// Check the digests that end after this UTC time (and the objects written since).
    #[arg(long, value_name = "TIME")]
    since: Option<String>,
    /// Check the digests that start before this UTC time (or `now`), and require the chain to reach it.
    #[arg(long, value_name = "TIME|now")]
    until: Option<String>,
    /// The public key the digests are checked with (PEM or DER SubjectPublicKeyInfo) [default: for
    /// s3://, the KMS key AUDITSTREAM_DIGEST_KMS_KEY_ID names; for dir:, the public half of --key-file].
    #[arg(long, value_name = "PEM")]
    public_key: Option<PathBuf>,
    /// dir: only: the Ed25519 key file whose public half checks the digests, when --public-key is not given.
    #[arg(long, value_name = "PATH", env = "AUDITSTREAM_DIGEST_KEY_FILE")]
    key_file: Option<PathBuf>,
}

enum Opened {
    Dir(DirStore),
    S3(S3Store, Box<aws_config::SdkConfig>),
}

impl Opened {
    fn archive(&self) -> &dyn Archive {
        match self {
            Opened::Dir(store) => store,
            Opened::S3(store, _) => store,
        }
    }
}

async fn open(text: &str) -> Result<Opened> {
    Ok(match DestSpec::parse(text)? {
        DestSpec::Dir(path) => Opened::Dir(DirStore::new(path)),
        DestSpec::S3 { bucket, prefix } => {
            let aws = aws_config::load_from_env().await;
            Opened::S3(S3Store::connect(S3Settings::for_bucket(&ProcessEnv, bucket, prefix)?, &aws), Box::new(aws))
        }
        _ => bail!("{text:?} is not an archive: expected s3://BUCKET[/PREFIX] or dir:PATH"),
    })
}

fn time(option: &str, text: &str) -> Result<UtcTime> {
    if text == "now" {
        return Ok(Now::capture().utc_time());
    }
    UtcTime::parse(text).map_err(|_| anyhow::anyhow!("{option} {text:?} is not a time: expected a UTC time like 2026-11-27T21:00:00Z or now"))
}

fn key_file(given: Option<PathBuf>) -> Result<PathBuf> {
    match given {
        Some(path) => Ok(path),
        None => match std::env::var_os("HOME") {
            Some(home) => Ok(Path::new(&home).join(DEFAULT_KEY_FILE)),
            None => bail!("no --key-file given and HOME is not set: say where the Ed25519 key of this archive is"),
        },
    }
}

fn kms_key_id() -> Result<String> {
    ProcessEnv
        .optional(DIGEST_KEY_VAR)
        .with_context(|| format!("{DIGEST_KEY_VAR} is not set: set it to the ARN or alias of the KMS key that signs this archive's digests"))
}

pub async fn digest(args: DigestArgs) -> Result<ExitCode> {
    let opened = open(&args.archive).await?;
    let until = match &args.until {
        Some(text) => time("--until", text)?,
        None => default_until(Now::capture().utc_time()),
    };
    let signer: Box<dyn DigestSigner> = match &opened {
        Opened::Dir(_) => Box::new(dir::digest_key(&key_file(args.key_file)?)?),
        Opened::S3(_, aws) => Box::new(KmsSigner::new(aws_sdk_kms::Client::new(aws), kms_key_id()?)),
    };
    let archive = opened.archive();
    let run = extend_chain(archive, signer.as_ref(), until).await?;
    for key in &run.written {
        println!("wrote {key}");
    }
    match run.end {
        Some(end) => {
            println!("{} digests written, naming {} manifests; the chain of {} ends at {}", run.written.len(), run.manifests, archive.name(), layout::iso(end))
        }
        None => println!("nothing to digest in {} up to {}", archive.name(), layout::iso(until)),
    }
    Ok(ExitCode::SUCCESS)
}

pub async fn verify_archive(args: VerifyArgs) -> Result<ExitCode> {
    let opened = open(&args.archive).await?;
    let public_key = match (&args.public_key, &opened) {
        (Some(path), _) => {
            let bytes = std::fs::read(path).with_context(|| format!("--public-key {}", path.display()))?;
            PublicKey::parse(&bytes).with_context(|| format!("--public-key {}", path.display()))?
        }
        (None, Opened::Dir(_)) => {
            let path = key_file(args.key_file)?;
            let pem = std::fs::read(&path).with_context(|| format!("digest key file {} (or give --public-key)", path.display()))?;
            auditstream::integrity::signature::Ed25519Key::from_pem(&pem).with_context(|| format!("digest key file {}", path.display()))?.public_key()
        }
        (None, Opened::S3(_, aws)) => {
            let der = KmsSigner::new(aws_sdk_kms::Client::new(aws), kms_key_id().context("no --public-key given")?).public_key().await?;
            PublicKey::parse(&der).context("the KMS key's public key")?
        }
    };
    let window =
        Window { since: args.since.as_deref().map(|t| time("--since", t)).transpose()?, until: args.until.as_deref().map(|t| time("--until", t)).transpose()? };
    let progress = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("{spinner} checking digests {pos}/{len} {wide_bar} {elapsed}").unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let archive = opened.archive();
    let show_progress = |done, total| {
        progress.set_length(total);
        progress.set_position(done);
    };
    // Each problem is printed as verify hands it over, none kept: there may be millions.
    let report = verify(archive, &public_key, &window, &show_progress, &mut |problem| crate::progress::say(&progress, &problem.to_string())).await?;
    progress.finish_and_clear();
    let covered = report.covered.map(|(from, to)| format!(" from {} to {}", layout::iso(from), layout::iso(to))).unwrap_or_default();
    let verdict = match report.problems {
        0 => "intact".to_owned(),
        1 => "1 problem".to_owned(),
        n => format!("{n} problems"),
    };
    println!("{}: {} digests{covered}, {} manifests, {} objects checked: {verdict}", archive.name(), report.digests, report.manifests, report.objects);
    Ok(if report.problems == 0 { ExitCode::SUCCESS } else { ExitCode::from(1) })
}
