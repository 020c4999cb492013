//! An upload's body → its report files, within limits.
//!
//! The body is a tar (usually gzip'd) of report files, or one report (plain or gzip'd),
//! told apart by magic bytes. Every decompressed byte counts against one budget, nested
//! `.xml.gz` entries included, so a zip bomb stops at the limit. Entries that could
//! escape a folder if unpacked (`..`, absolute paths, links, devices) refuse the upload.

use super::limits::{Charge, Exhausted};
use crate::ingest::is_report_name;
use std::cell::Cell;
use std::io::Read;
use std::path::{Component, Path};

const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];

/// Why an upload's body was refused as a whole.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum UnpackError {
    /// More than the decompressed-size limit: HTTP 413.
    TooLarge(String),
    /// An entry that could write outside a folder, or is not a plain file: HTTP 422.
    Unsafe(String),
    /// Not gzip, tar or XML that can be read: HTTP 400.
    Malformed(String),
    /// The server's memory budget is held by other uploads: HTTP 503, retry later.
    Busy(String),
}

impl std::fmt::Display for UnpackError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            UnpackError::TooLarge(m)
            | UnpackError::Unsafe(m)
            | UnpackError::Malformed(m)
            | UnpackError::Busy(m) => f.write_str(m),
        }
    }
}

/// One report file of an upload.
pub struct Entry<'a> {
    /// Its path inside the upload, e.g. `target/surefire-reports/TEST-a.xml`.
    pub name: String,
    /// blake3 of the file as sent (before any gzip of the file itself is undone), like
    /// `ingest` hashes a file on disk, so that uploading and ingesting agree.
    pub hash: String,
    /// The report, decompressed.
    pub xml: std::borrow::Cow<'a, [u8]>,
    /// It came out of a tar (a folder's reports, as `upload` packs them), where another
    /// tool's XML is skipped, not rejected.
    pub packed: bool,
}

/// Gzip inside gzip (beyond the body's own) is undone this many times at most; deeper is
/// refused.
pub const MAX_GZIP_LAYERS: usize = 3;

/// Counts decompressed bytes against the upload's limit and the server's memory budget.
pub struct Meter<'c> {
    used: Cell<u64>,
    limit: u64,
    charge: Option<&'c Charge>,
    refused: Cell<Option<Exhausted>>,
}

impl<'c> Meter<'c> {
    pub fn new(limit: u64, charge: Option<&'c Charge>) -> Meter<'c> {
        Meter {
            used: Cell::new(0),
            limit,
            charge,
            refused: Cell::new(None),
        }
    }

    /// Decompressed bytes so far.
    pub fn used(&self) -> u64 {
        self.used.get()
    }

    fn count(&self, n: u64) -> std::io::Result<()> {
        self.used.set(self.used.get() + n);
        if self.used.get() > self.limit {
            return Err(std::io::Error::other("decompressed size limit exceeded"));
        }
        if let Some(c) = self.charge {
            if let Err(e) = c.add(n) {
                self.refused.set(Some(e));
                return Err(std::io::Error::other("memory budget exhausted"));
            }
        }
        Ok(())
    }

    /// The error to answer when reading failed: a limit if one was hit, else `other`.
    fn error(&self, other: impl FnOnce() -> UnpackError) -> UnpackError {
        match self.refused.get() {
            Some(Exhausted::Busy) => UnpackError::Busy(
                "the server's memory budget for uploads (--max-memory) is in use; retry later"
                    .into(),
            ),
            Some(Exhausted::TooLarge) => UnpackError::TooLarge(format!(
                "the upload needs more memory than the server's --max-memory ({} bytes)",
                self.charge.map_or(0, |c| c.limit())
            )),
            None if self.used.get() > self.limit => too_large(self.limit),
            None => other(),
        }
    }
}

/// Counts bytes read against a [`Meter`].
struct Counted<'m, 'c, R> {
    inner: R,
    meter: &'m Meter<'c>,
}

impl<R: Read> Read for Counted<'_, '_, R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.meter.count(n as u64)?;
        Ok(n)
    }
}

/// Undo gzip layers (a gzip'd report gzip'd again) within the meter, so that no layer
/// reaches the XML parser still compressed.
fn gunzip_nested(
    mut data: Vec<u8>,
    meter: &Meter<'_>,
    shown: &str,
) -> Result<Vec<u8>, UnpackError> {
    let mut layers = 0;
    while data.starts_with(&GZIP_MAGIC) {
        if layers == MAX_GZIP_LAYERS {
            return Err(UnpackError::Malformed(format!(
                "{shown} is gzip'd more than {MAX_GZIP_LAYERS} times over"
            )));
        }
        let mut out = Vec::new();
        Counted {
            inner: flate2::read::MultiGzDecoder::new(data.as_slice()),
            meter,
        }
        .read_to_end(&mut out)
        .map_err(|e| {
            meter.error(|| UnpackError::Malformed(format!("{shown} is not valid gzip: {e}")))
        })?;
        data = out;
        layers += 1;
    }
    Ok(data)
}

fn too_large(limit: u64) -> UnpackError {
    UnpackError::TooLarge(format!(
        "the upload unpacks to more than {limit} bytes (the server's --max-unpacked)"
    ))
}

fn is_tar(head: &[u8]) -> bool {
    head.len() >= 262 && &head[257..262] == b"ustar"
}

/// Split a body into report files, calling `on_entry` for each. `single_name` names a
/// body that is one report. Every decompressed byte, of every gzip layer, counts against
/// the meter.
pub fn unpack(
    body: &[u8],
    single_name: &str,
    meter: &Meter<'_>,
    mut on_entry: impl FnMut(Entry<'_>),
) -> Result<(), UnpackError> {
    if body.starts_with(&GZIP_MAGIC) {
        // Decompress the head to see whether a tar or one report is inside.
        let mut reader = std::io::BufReader::with_capacity(
            64 * 1024,
            Counted {
                inner: flate2::read::MultiGzDecoder::new(body),
                meter,
            },
        );
        let head = std::io::BufRead::fill_buf(&mut reader).map_err(|e| gzip_error(e, meter))?;
        if is_tar(head) {
            return unpack_tar(reader, meter, &mut on_entry);
        }
        let mut xml = Vec::new();
        reader
            .read_to_end(&mut xml)
            .map_err(|e| gzip_error(e, meter))?;
        let xml = gunzip_nested(xml, meter, "the body")?;
        on_entry(Entry {
            name: single_name.to_string(),
            hash: blake3::hash(body).to_hex().to_string(),
            xml: xml.into(),
            packed: false,
        });
        return Ok(());
    }
    if body.len() as u64 > meter.limit {
        return Err(too_large(meter.limit));
    }
    if is_tar(body) {
        return unpack_tar(body, meter, &mut on_entry);
    }
    on_entry(Entry {
        name: single_name.to_string(),
        hash: blake3::hash(body).to_hex().to_string(),
        xml: body.into(),
        packed: false,
    });
    Ok(())
}

fn gzip_error(e: std::io::Error, meter: &Meter<'_>) -> UnpackError {
    meter.error(|| UnpackError::Malformed(format!("the body is not valid gzip: {e}")))
}

/// The entry's path as a safe relative name, or why it is not one.
fn safe_name(path: &Path) -> Result<String, String> {
    let mut parts = Vec::new();
    for c in path.components() {
        match c {
            Component::Normal(p) => parts.push(p.to_string_lossy().into_owned()),
            Component::CurDir => {}
            Component::ParentDir => return Err("contains `..`".into()),
            Component::RootDir | Component::Prefix(_) => return Err("is absolute".into()),
        }
    }
    if parts.is_empty() {
        return Err("is empty".into());
    }
    Ok(parts.join("/"))
}

fn unpack_tar<R: Read>(
    reader: R,
    meter: &Meter<'_>,
    on_entry: &mut impl FnMut(Entry<'_>),
) -> Result<(), UnpackError> {
    let counted = Counted {
        inner: reader,
        meter,
    };
    let tar_error = |e: std::io::Error| {
        meter.error(|| UnpackError::Malformed(format!("the body is not a valid tar archive: {e}")))
    };
    let mut archive = tar::Archive::new(counted);
    for entry in archive.entries().map_err(tar_error)? {
        let mut entry = entry.map_err(tar_error)?;
        let raw_path = entry.path().map_err(tar_error)?.into_owned();
        let shown = raw_path.display().to_string();
        let kind = entry.header().entry_type();
        let unsafe_entry = |why: &str| {
            UnpackError::Unsafe(format!(
                "tar entry {shown:?} {why}; the upload was refused (send plain report files with relative paths)"
            ))
        };
        use tar::EntryType;
        match kind {
            EntryType::Regular | EntryType::Continuous => {}
            EntryType::Directory | EntryType::XGlobalHeader => {
                safe_name(&raw_path)
                    .map_err(|why| unsafe_entry(&format!("has a path that {why}")))?;
                continue;
            }
            EntryType::Symlink => return Err(unsafe_entry("is a symbolic link")),
            EntryType::Link => return Err(unsafe_entry("is a hard link")),
            _ => return Err(unsafe_entry("is not a regular file")),
        }
        let name =
            safe_name(&raw_path).map_err(|why| unsafe_entry(&format!("has a path that {why}")))?;
        let size = entry.size();
        if meter.used().saturating_add(size) > meter.limit {
            return Err(too_large(meter.limit));
        }
        if !is_report_name(&name) {
            tracing::debug!(name, "skipping a file that is not a report");
            continue;
        }
        let mut raw = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut raw).map_err(tar_error)?;
        let hash = blake3::hash(&raw).to_hex().to_string();
        let xml = gunzip_nested(raw, meter, &format!("tar entry {shown:?}"))?;
        on_entry(Entry {
            name,
            hash,
            xml: xml.into(),
            packed: true,
        });
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    fn gz(bytes: &[u8]) -> Vec<u8> {
        let mut e = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        e.write_all(bytes).unwrap();
        e.finish().unwrap()
    }

    fn tar_of(entries: &[(&str, &[u8])]) -> Vec<u8> {
        let mut b = tar::Builder::new(Vec::new());
        for (name, data) in entries {
            let mut h = tar::Header::new_gnu();
            h.set_size(data.len() as u64);
            h.set_mode(0o644);
            h.set_cksum();
            b.append_data(&mut h, name, *data).unwrap();
        }
        b.into_inner().unwrap()
    }

    fn names(body: &[u8], limit: u64) -> Result<Vec<(String, Vec<u8>)>, UnpackError> {
        let mut out = Vec::new();
        unpack(body, "upload.xml", &Meter::new(limit, None), |e| {
            out.push((e.name, e.xml.into_owned()))
        })?;
        Ok(out)
    }

    #[test]
    fn reads_tgz_tar_xml_and_gz_xml() {
        let xml = b"<testsuite/>".as_slice();
        let t = tar_of(&[
            ("a/TEST-1.xml", xml),
            ("a/notes.txt", b"x"),
            ("b.xml.gz", &gz(xml)),
        ]);
        let want = vec![
            ("a/TEST-1.xml".to_string(), xml.to_vec()),
            ("b.xml.gz".to_string(), xml.to_vec()),
        ];
        assert_eq!(names(&gz(&t), 1 << 20).unwrap(), want);
        assert_eq!(names(&t, 1 << 20).unwrap(), want);
        assert_eq!(
            names(xml, 1 << 20).unwrap(),
            vec![("upload.xml".to_string(), xml.to_vec())]
        );
        assert_eq!(
            names(&gz(xml), 1 << 20).unwrap(),
            vec![("upload.xml".to_string(), xml.to_vec())]
        );
    }

    #[test]
    fn bombs_stop_at_the_limit() {
        let zeros = vec![b' '; 4 << 20];
        assert!(matches!(
            names(&gz(&zeros), 1 << 20),
            Err(UnpackError::TooLarge(_))
        ));
        let t = tar_of(&[("big.xml", &zeros)]);
        assert!(matches!(
            names(&gz(&t), 1 << 20),
            Err(UnpackError::TooLarge(_))
        ));
        // A small tar entry that is itself a gzip bomb.
        let t = tar_of(&[("big.xml.gz", &gz(&zeros))]);
        assert!(matches!(
            names(&gz(&t), 1 << 20),
            Err(UnpackError::TooLarge(_))
        ));
    }

    #[test]
    fn nested_gzip_counts_every_layer_against_one_budget() {
        let xml = format!(
            "<testsuite><testcase name=\"a\"><failure>{}</failure></testcase></testsuite>",
            " ".repeat(4 << 20)
        );
        let twice = gz(&gz(xml.as_bytes()));
        assert!(twice.len() < 64 << 10);
        // The single-report body and a tar entry: both stop at the limit.
        assert!(matches!(
            names(&twice, 1 << 20),
            Err(UnpackError::TooLarge(_))
        ));
        let t = tar_of(&[("a/TEST-x.xml.gz", &twice)]);
        assert!(matches!(
            names(&gz(&t), 1 << 20),
            Err(UnpackError::TooLarge(_))
        ));
        assert!(matches!(names(&t, 1 << 20), Err(UnpackError::TooLarge(_))));
        // Within the limit every layer is undone: the parser never sees gzip.
        let small = gz(&gz(b"<testsuite/>"));
        assert_eq!(names(&small, 1 << 20).unwrap()[0].1, b"<testsuite/>");
        let t = tar_of(&[("b.xml.gz", &small)]);
        assert_eq!(names(&t, 1 << 20).unwrap()[0].1, b"<testsuite/>");
        // Layers beyond the cap are refused, however small.
        let deep = gz(&gz(&gz(&gz(&gz(b"<testsuite/>")))));
        assert!(
            matches!(names(&deep, 1 << 20), Err(UnpackError::Malformed(m)) if m.contains("gzip'd more than"))
        );
    }

    #[test]
    fn the_memory_budget_refuses_busy_or_too_large() {
        let budget = super::super::limits::MemoryBudget::new(1 << 20);
        let other = budget.charge();
        other.add(900 << 10).unwrap();
        let mine = budget.charge();
        let body = gz(&vec![b' '; 512 << 10]);
        let err = unpack(&body, "u.xml", &Meter::new(8 << 20, Some(&mine)), |_| {}).unwrap_err();
        assert!(matches!(err, UnpackError::Busy(_)), "{err:?}");
        drop((other, mine));
        let big = gz(&vec![b' '; 2 << 20]);
        let mine = budget.charge();
        let err = unpack(&big, "u.xml", &Meter::new(8 << 20, Some(&mine)), |_| {}).unwrap_err();
        assert!(matches!(err, UnpackError::TooLarge(_)), "{err:?}");
        drop(mine);
        assert_eq!(budget.used(), 0);
    }

    #[test]
    fn traversal_and_links_are_refused() {
        // tar::Builder refuses `..` itself, so write the name into the header by hand.
        let mut h = tar::Header::new_gnu();
        h.as_gnu_mut().unwrap().name[..12].copy_from_slice(b"../evil.xml\0");
        h.set_size(1);
        h.set_mode(0o644);
        h.set_cksum();
        let mut raw = h.as_bytes().to_vec();
        raw.extend_from_slice(&[b'x'; 512]);
        raw.extend_from_slice(&[0; 1024]);
        let err = names(&gz(&raw), 1 << 20).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Unsafe(m) if m.contains("..")),
            "{err:?}"
        );

        let mut b = tar::Builder::new(Vec::new());
        let mut h = tar::Header::new_gnu();
        h.set_entry_type(tar::EntryType::Symlink);
        h.set_size(0);
        h.set_cksum();
        b.append_link(&mut h, "link.xml", "/etc/passwd").unwrap();
        let err = names(&b.into_inner().unwrap(), 1 << 20).unwrap_err();
        assert!(
            matches!(&err, UnpackError::Unsafe(m) if m.contains("symbolic link")),
            "{err:?}"
        );
    }

    #[test]
    fn broken_gzip_is_malformed() {
        let mut body = gz(b"<testsuite/>");
        let n = body.len();
        body.truncate(n - 6);
        assert!(matches!(
            names(&body, 1 << 20),
            Err(UnpackError::Malformed(_))
        ));
    }
}
