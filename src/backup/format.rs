//! The snapshot stream and the backup file.
//!
//! A **stream** is what the server sends over its control socket and what a backup file holds:
//!
//! ```text
//! 'H' len:u32 header-json        the snapshot's Header
//! 'T' len:u32 name               the records that follow belong to this tree
//! 'E' len:u32 key len:u32 value  one record
//! 'Z' records:u64 sha256:[32]    the end: how many 'E's, and SHA-256 of every byte before 'Z'
//! ```
//!
//! (integers big-endian). The end record makes a truncated stream detectable, and the checksum
//! a damaged one; nothing is restored from a stream that does not end correctly.
//!
//! A **backup file** is the line [`FILE_MAGIC`] followed by the stream, gzip-compressed (chat
//! history is JSON text and shrinks several times). The plain first line lets `restore` tell a
//! file that is not a backup at all from a damaged one.

use std::fs::File;
use std::io::{self, BufReader, BufWriter, Read, Write};
use std::path::{Path, PathBuf};

use flate2::read::GzDecoder;
use flate2::write::GzEncoder;
use sha2::{Digest, Sha256};

use crate::store::snapshot::{Header, Snapshot};

/// The first line of every backup file; the digit is the file format's version.
pub const FILE_MAGIC: &[u8] = b"HEARTH BACKUP 1\n";

const TAG_HEADER: u8 = b'H';
const TAG_TREE: u8 = b'T';
const TAG_ENTRY: u8 = b'E';
const TAG_END: u8 = b'Z';

/// No key, value or header is anywhere near this; a length beyond it means damage, and
/// refusing it keeps a damaged file from making restore allocate gigabytes.
const MAX_FIELD: u32 = 64 * 1024 * 1024;

#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    #[error("{0}")]
    Io(#[from] io::Error),
    #[error("it ends before its end record (cut short)")]
    Truncated,
    #[error("unexpected byte {0:#04x} where a record should start")]
    BadTag(u8),
    #[error("a field claims {0} bytes")]
    TooLong(u32),
    #[error("its header cannot be read: {0}")]
    BadHeader(serde_json::Error),
    #[error("its checksum does not match its contents")]
    Checksum,
    #[error("it says it holds {expected} records but holds {found}")]
    Count { expected: u64, found: u64 },
}

/// Hashes everything written through it.
struct Hashing<W> {
    inner: W,
    hash: Sha256,
}

impl<W: Write> Write for Hashing<W> {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        let n = self.inner.write(buf)?;
        self.hash.update(&buf[..n]);
        Ok(n)
    }

    fn flush(&mut self) -> io::Result<()> {
        self.inner.flush()
    }
}

fn field(out: &mut impl Write, bytes: &[u8]) -> io::Result<()> {
    let len = u32::try_from(bytes.len())
        .ok()
        .filter(|len| *len <= MAX_FIELD)
        .ok_or_else(|| io::Error::other(format!("a record of {} bytes", bytes.len())))?;
    out.write_all(&len.to_be_bytes())?;
    out.write_all(bytes)
}

/// Writes `snapshot` as a stream; answers the number of records.
pub fn write_stream(snapshot: &Snapshot, out: impl Write) -> io::Result<u64> {
    let mut out = Hashing {
        inner: out,
        hash: Sha256::new(),
    };
    out.write_all(&[TAG_HEADER])?;
    field(&mut out, &serde_json::to_vec(&snapshot.header)?)?;
    let mut records = 0u64;
    for tree in &snapshot.trees {
        out.write_all(&[TAG_TREE])?;
        field(&mut out, &tree.name)?;
        for (key, value) in &tree.entries {
            out.write_all(&[TAG_ENTRY])?;
            field(&mut out, key)?;
            field(&mut out, value)?;
            records += 1;
        }
    }
    let digest = out.hash.finalize_reset();
    let mut inner = out.inner;
    inner.write_all(&[TAG_END])?;
    inner.write_all(&records.to_be_bytes())?;
    inner.write_all(&digest)?;
    inner.flush()?;
    Ok(records)
}

/// One item of a stream after its header.
#[derive(Debug, PartialEq, Eq)]
pub enum Record {
    Tree(Vec<u8>),
    Entry(Vec<u8>, Vec<u8>),
}

/// Reads a stream, checking as it goes; the end record's count and checksum are checked when
/// [`StreamReader::next`] reaches it, so a caller that has seen `Ok(None)` has a whole stream.
pub struct StreamReader<R> {
    inner: R,
    hash: Sha256,
    records: u64,
    header: Option<Header>,
    ended: bool,
}

impl<R: Read> StreamReader<R> {
    /// Reads the header.
    pub fn new(inner: R) -> Result<StreamReader<R>, FormatError> {
        let mut reader = StreamReader {
            inner,
            hash: Sha256::new(),
            records: 0,
            header: None,
            ended: false,
        };
        match reader.tag()? {
            TAG_HEADER => {}
            other => return Err(FormatError::BadTag(other)),
        }
        let raw = reader.field()?;
        let header = serde_json::from_slice(&raw).map_err(FormatError::BadHeader)?;
        reader.header = Some(header);
        Ok(reader)
    }

    pub fn header(&self) -> Option<&Header> {
        self.header.as_ref()
    }

    fn exact(&mut self, buf: &mut [u8]) -> Result<(), FormatError> {
        self.inner.read_exact(buf).map_err(|e| match e.kind() {
            io::ErrorKind::UnexpectedEof => FormatError::Truncated,
            _ => FormatError::Io(e),
        })
    }

    fn hashed(&mut self, buf: &mut [u8]) -> Result<(), FormatError> {
        self.exact(buf)?;
        self.hash.update(&*buf);
        Ok(())
    }

    fn tag(&mut self) -> Result<u8, FormatError> {
        let mut tag = [0u8; 1];
        self.exact(&mut tag)?;
        // The end tag is outside the checksum; every other byte is inside.
        if tag[0] != TAG_END {
            self.hash.update(tag);
        }
        Ok(tag[0])
    }

    fn field(&mut self) -> Result<Vec<u8>, FormatError> {
        let mut len = [0u8; 4];
        self.hashed(&mut len)?;
        let len = u32::from_be_bytes(len);
        if len > MAX_FIELD {
            return Err(FormatError::TooLong(len));
        }
        let mut bytes = vec![0u8; len as usize];
        self.hashed(&mut bytes)?;
        Ok(bytes)
    }

    /// The next record, or `None` at a verified end.
    pub fn next_record(&mut self) -> Result<Option<Record>, FormatError> {
        if self.ended {
            return Ok(None);
        }
        match self.tag()? {
            TAG_TREE => Ok(Some(Record::Tree(self.field()?))),
            TAG_ENTRY => {
                let key = self.field()?;
                let value = self.field()?;
                self.records += 1;
                Ok(Some(Record::Entry(key, value)))
            }
            TAG_END => {
                let mut count = [0u8; 8];
                self.exact(&mut count)?;
                let mut digest = [0u8; 32];
                self.exact(&mut digest)?;
                let expected = u64::from_be_bytes(count);
                if self.hash.finalize_reset().as_slice() != digest {
                    return Err(FormatError::Checksum);
                }
                if expected != self.records {
                    return Err(FormatError::Count {
                        expected,
                        found: self.records,
                    });
                }
                self.ended = true;
                Ok(None)
            }
            other => Err(FormatError::BadTag(other)),
        }
    }

    pub fn records(&self) -> u64 {
        self.records
    }
}

/// Copies everything read through it into a writer: a stream coming from the server goes into
/// the backup file byte for byte while [`StreamReader`] checks it.
pub struct Tee<R, W> {
    pub reader: R,
    pub writer: W,
}

impl<R: Read, W: Write> Read for Tee<R, W> {
    fn read(&mut self, buf: &mut [u8]) -> io::Result<usize> {
        let n = self.reader.read(buf)?;
        self.writer.write_all(&buf[..n])?;
        Ok(n)
    }
}

/// Where a backup goes: a file, or standard output (`-`).
enum Output {
    File(File),
    Stdout(io::Stdout),
}

impl Write for Output {
    fn write(&mut self, buf: &[u8]) -> io::Result<usize> {
        match self {
            Output::File(file) => file.write(buf),
            Output::Stdout(out) => out.write(buf),
        }
    }

    fn flush(&mut self) -> io::Result<()> {
        match self {
            Output::File(file) => file.flush(),
            Output::Stdout(out) => out.flush(),
        }
    }
}

/// A backup file being written: to `FILE.partial` beside it, renamed into place only once
/// complete and on disk, so an interrupted backup never leaves a file that looks like one.
/// The path `-` means standard output.
pub struct FileWriter {
    /// The file and its partial name; `None` for standard output.
    paths: Option<(PathBuf, PathBuf)>,
    gz: GzEncoder<BufWriter<Output>>,
}

impl FileWriter {
    pub fn create(path: &Path) -> io::Result<FileWriter> {
        let (paths, output) = if path == Path::new("-") {
            (None, Output::Stdout(io::stdout()))
        } else {
            let mut name = path.file_name().unwrap_or_default().to_os_string();
            name.push(".partial");
            let partial = path.with_file_name(name);
            let file = create_private(&partial)?;
            (Some((path.to_path_buf(), partial)), Output::File(file))
        };
        let mut out = BufWriter::new(output);
        out.write_all(FILE_MAGIC)?;
        Ok(FileWriter {
            paths,
            // Fast compression: a backup often runs beside the server on a small board, and
            // JSON shrinks well at any level.
            gz: GzEncoder::new(out, flate2::Compression::fast()),
        })
    }

    /// Where the stream goes.
    pub fn stream(&mut self) -> &mut impl Write {
        &mut self.gz
    }

    /// Completes the file: compressed tail, fsync, rename, fsync of the directory. Answers the
    /// file's size (`None` for standard output).
    pub fn finish(self) -> io::Result<Option<u64>> {
        let out = self.gz.finish()?;
        let file = match out.into_inner().map_err(|e| e.into_error())? {
            Output::File(file) => file,
            Output::Stdout(mut out) => {
                out.flush()?;
                return Ok(None);
            }
        };
        let Some((path, partial)) = self.paths else {
            return Ok(None);
        };
        file.sync_all()?;
        let size = file.metadata()?.len();
        drop(file);
        std::fs::rename(&partial, &path)?;
        if let Some(dir) = path.parent() {
            let dir = if dir.as_os_str().is_empty() {
                Path::new(".")
            } else {
                dir
            };
            // Makes the rename itself durable; a directory that cannot be opened (unusual)
            // leaves the rename to the next sync of the file system.
            if let Ok(dir) = File::open(dir) {
                let _ = dir.sync_all();
            }
        }
        Ok(Some(size))
    }

    /// Removes the partial file after a failure.
    pub fn abandon(self) {
        if let Some((_, partial)) = &self.paths {
            let _ = std::fs::remove_file(partial);
        }
    }
}

/// A backup holds password hashes and session token hashes: readable by its owner only.
fn create_private(path: &Path) -> io::Result<File> {
    let mut options = std::fs::OpenOptions::new();
    options.write(true).create(true).truncate(true);
    #[cfg(unix)]
    {
        use std::os::unix::fs::OpenOptionsExt;
        options.mode(0o600);
    }
    options.open(path)
}

/// Why a file cannot be read as a backup.
#[derive(Debug, thiserror::Error)]
pub enum OpenError {
    #[error("cannot read it: {0}")]
    Io(#[from] io::Error),
    #[error("it is not a hearth backup (it does not start with the backup header)")]
    Foreign,
    #[error("it is a hearth backup of format {0}, newer than this hearth reads (1)")]
    Newer(String),
    #[error("it is damaged: {0}")]
    Damaged(#[from] FormatError),
}

/// A backup being read: a file, or standard input.
pub type FileReader = StreamReader<GzDecoder<BufReader<Box<dyn Read>>>>;

/// Opens a backup file (`-`: standard input) and reads its header.
pub fn open_file(path: &Path) -> Result<FileReader, OpenError> {
    let input: Box<dyn Read> = if path == Path::new("-") {
        Box::new(io::stdin())
    } else {
        Box::new(File::open(path)?)
    };
    let mut file = BufReader::new(input);
    let mut magic = [0u8; FILE_MAGIC.len()];
    let mut read = 0;
    while read < magic.len() {
        match file.read(&mut magic[read..])? {
            0 => break,
            n => read += n,
        }
    }
    if magic != FILE_MAGIC {
        let prefix = b"HEARTH BACKUP ";
        if read == magic.len() && magic.starts_with(prefix) {
            let version = String::from_utf8_lossy(&magic[prefix.len()..]);
            return Err(OpenError::Newer(version.trim().to_string()));
        }
        return Err(OpenError::Foreign);
    }
    Ok(StreamReader::new(GzDecoder::new(file))?)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::store::snapshot::TreeCopy;

    fn sample() -> Snapshot {
        Snapshot {
            header: Header {
                hearth_version: "0.0.0".into(),
                schema_version: 2,
                id_high_water: 77,
                taken_at: 1,
            },
            trees: vec![
                TreeCopy {
                    name: "a".into(),
                    entries: vec![("k1".into(), "v1".into()), ("k2".into(), "".into())],
                },
                TreeCopy {
                    name: "b".into(),
                    entries: vec![],
                },
            ],
            paused: Default::default(),
        }
    }

    fn read_all(bytes: &[u8]) -> Result<Vec<Record>, FormatError> {
        let mut reader = StreamReader::new(bytes)?;
        let mut records = Vec::new();
        while let Some(record) = reader.next_record()? {
            records.push(record);
        }
        Ok(records)
    }

    #[test]
    fn streams_round_trip_and_damage_is_caught() {
        let mut bytes = Vec::new();
        assert_eq!(write_stream(&sample(), &mut bytes).unwrap(), 2);
        let records = read_all(&bytes).unwrap();
        assert_eq!(
            records,
            vec![
                Record::Tree(b"a".to_vec()),
                Record::Entry(b"k1".to_vec(), b"v1".to_vec()),
                Record::Entry(b"k2".to_vec(), Vec::new()),
                Record::Tree(b"b".to_vec()),
            ]
        );
        assert_eq!(
            StreamReader::new(bytes.as_slice()).unwrap().header(),
            Some(&sample().header)
        );

        // Every cut is noticed.
        for cut in 0..bytes.len() {
            assert!(read_all(&bytes[..cut]).is_err(), "cut at {cut}");
        }
        // So is every flipped byte.
        for at in 0..bytes.len() {
            let mut damaged = bytes.clone();
            damaged[at] ^= 0x20;
            assert!(read_all(&damaged).is_err(), "flip at {at}");
        }
    }
}
