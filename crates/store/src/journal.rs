//! The journal: append-only files of checksummed frames, the durable half of the event log.
//!
//! An event is acknowledged only after the frame holding it has been written and
//! `fdatasync`ed; the writer batches many appends into one sync (group commit). Files are
//! named by the first sequence number they may hold, so sealing can drop whole files.
//!
//! Frame layout (little endian):
//!
//! ```text
//! magic u32 | body_len u32 | crc32c(body) u32 | body
//! body    = first_seq u64 | count u32 | raw_len u32 | payload, or zstd(payload) of raw_len bytes
//! payload = per event, sequence numbers first_seq, first_seq + 1, ...:
//!           event_time_ms i64 | ingest_time_ms i64 | account_len u8 | account
//!           | region_len u8 | region | json_len u32 | json
//! ```
//!
//! The payload is encoded by whoever appends (in parallel, on the request threads); the
//! single writer only adds the header with the sequence numbers it assigns. Payloads are
//! stored as they are (`raw_len` 0); frames of earlier versions hold zstd-compressed ones.
//!
//! The writer writes with `O_DIRECT` where the file system allows it: whole 4 KiB blocks
//! from a block-aligned buffer, starting with the file's last partial block again, so that
//! a file ends in zeros up to its last block boundary. Buffered writes cost the kernel a
//! copy of every byte into the page cache, and the page cache pages for a journal that is
//! read only at recovery.
//!
//! Recovery reads every frame in order. A frame that fails its checksum at the end of the
//! newest file, with no valid frame after it, is a torn write that was never acknowledged:
//! it is cut off. Any other bad frame is corruption of acknowledged data and recovery stops
//! with [`StoreError::Corrupt`] rather than silently dropping events.

use std::fs::{self, File, OpenOptions};
use std::io::Read;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use crate::error::StoreError;
use crate::fsutil::sync_dir;

const MAGIC: u32 = 0x324A_4B54; // "TKJ2"
const HEADER_LEN: usize = 12;
const BODY_HEADER_LEN: usize = 16;
/// No frame is larger than this; a header claiming more is corrupt, not a reason to allocate.
pub const MAX_FRAME_BYTES: usize = 512 * 1024 * 1024;
/// The unit of direct writes: their buffer's alignment, offset and length are multiples of
/// it. A page, which is a multiple of every logical block size Linux uses.
const BLOCK: usize = 4096;

/// One event as the journal records it, with the number the writer gave it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct JournalEntry<'a> {
    pub seq: u64,
    pub event: PayloadEntry<'a>,
}

/// An event as a frame's payload holds it. The record's lookup fields are not journalled:
/// recovery reads them again from the JSON, which is the source of truth.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct PayloadEntry<'a> {
    pub event_time_ms: i64,
    pub ingest_time_ms: i64,
    pub account_id: &'a str,
    pub region: &'a str,
    pub json: &'a [u8],
}

/// The encoded payload of consecutive events, ready for [`encode_frame`].
///
/// It is not compressed. zstd's fastest useful level took about a fifth of a request's CPU;
/// the bytes it saved were a copy into the page cache, which direct writes do not make.
#[derive(Debug, Clone, Default)]
pub struct Payload {
    pub count: u32,
    raw: Vec<u8>,
}

impl Payload {
    /// The bytes its frame takes in the journal.
    pub fn frame_len(&self) -> usize {
        HEADER_LEN + BODY_HEADER_LEN + self.raw.len()
    }
}

/// Encodes events for one frame.
pub fn encode_payload<'a>(entries: impl IntoIterator<Item = PayloadEntry<'a>, IntoIter: Clone>) -> Payload {
    let entries = entries.into_iter();
    // Sized up front: growing a megabyte buffer by doubling copies it about twice over.
    let len = entries.clone().map(|entry| 22 + entry.account_id.len() + entry.region.len() + entry.json.len()).sum();
    let mut raw = Vec::with_capacity(len);
    let mut count = 0u32;
    for entry in entries {
        count += 1;
        raw.extend_from_slice(&entry.event_time_ms.to_le_bytes());
        raw.extend_from_slice(&entry.ingest_time_ms.to_le_bytes());
        // Account IDs and Regions are validated to at most 64 bytes before they get here.
        raw.push(entry.account_id.len() as u8);
        raw.extend_from_slice(entry.account_id.as_bytes());
        raw.push(entry.region.len() as u8);
        raw.extend_from_slice(entry.region.as_bytes());
        raw.extend_from_slice(&(entry.json.len() as u32).to_le_bytes());
        raw.extend_from_slice(entry.json);
    }
    Payload { count, raw }
}

/// Appends one frame holding `payload`'s events, numbered from `first_seq`, to `out`.
pub fn encode_frame(first_seq: u64, payload: &Payload, out: &mut Vec<u8>) {
    let start = out.len();
    out.extend_from_slice(&MAGIC.to_le_bytes());
    out.extend_from_slice(&[0; 8]);
    let body_start = out.len();
    out.extend_from_slice(&first_seq.to_le_bytes());
    out.extend_from_slice(&payload.count.to_le_bytes());
    // raw_len 0: the payload is stored as it is.
    out.extend_from_slice(&0u32.to_le_bytes());
    out.extend_from_slice(&payload.raw);
    let body_len = (out.len() - body_start) as u32;
    let crc = crc32c::crc32c(&out[body_start..]);
    out[start + 4..start + 8].copy_from_slice(&body_len.to_le_bytes());
    out[start + 8..start + 12].copy_from_slice(&crc.to_le_bytes());
}

/// Why bytes at some offset are not a valid frame.
#[derive(Debug, PartialEq, Eq)]
enum FrameError {
    /// The file ends inside the frame.
    Truncated,
    /// The frame is complete but wrong: magic, checksum or layout.
    Invalid(&'static str),
}

/// A checked frame: its numbering, its payload as stored, and its total length.
struct Frame<'a> {
    first_seq: u64,
    count: u32,
    raw_len: u32,
    stored: &'a [u8],
    len: usize,
}

/// Reads and checks the frame at the start of `bytes`.
fn read_frame(bytes: &[u8]) -> Result<Frame<'_>, FrameError> {
    if bytes.len() < HEADER_LEN {
        return Err(FrameError::Truncated);
    }
    let word = |at: usize| u32::from_le_bytes([bytes[at], bytes[at + 1], bytes[at + 2], bytes[at + 3]]);
    if word(0) != MAGIC {
        return Err(FrameError::Invalid("bad frame magic"));
    }
    let body_len = word(4) as usize;
    if !(BODY_HEADER_LEN..=MAX_FRAME_BYTES).contains(&body_len) {
        return Err(FrameError::Invalid("frame length out of range"));
    }
    let Some(body) = bytes.get(HEADER_LEN..HEADER_LEN + body_len) else {
        return Err(FrameError::Truncated);
    };
    if crc32c::crc32c(body) != word(8) {
        return Err(FrameError::Invalid("frame checksum mismatch"));
    }
    let first_seq = u64::from_le_bytes(body[0..8].try_into().map_err(|_| FrameError::Invalid("frame header"))?);
    let count = u32::from_le_bytes(body[8..12].try_into().map_err(|_| FrameError::Invalid("frame header"))?);
    let raw_len = u32::from_le_bytes(body[12..16].try_into().map_err(|_| FrameError::Invalid("frame header"))?);
    if raw_len as usize > MAX_FRAME_BYTES {
        return Err(FrameError::Invalid("frame payload length out of range"));
    }
    Ok(Frame { first_seq, count, raw_len, stored: &body[BODY_HEADER_LEN..], len: HEADER_LEN + body_len })
}

/// The events of a checked frame. `buffer` holds the decompressed payload they borrow.
fn frame_entries<'a>(frame: &Frame<'a>, buffer: &'a mut Vec<u8>) -> Result<Vec<JournalEntry<'a>>, FrameError> {
    let raw: &'a [u8] = if frame.raw_len == 0 {
        frame.stored
    } else {
        *buffer = zstd::bulk::decompress(frame.stored, frame.raw_len as usize)
            .map_err(|_| FrameError::Invalid("frame payload does not decompress"))?;
        if buffer.len() != frame.raw_len as usize {
            return Err(FrameError::Invalid("frame payload has the wrong length"));
        }
        buffer
    };
    decode_payload(raw, frame.first_seq, frame.count)
        .ok_or(FrameError::Invalid("frame payload does not match its layout"))
}

fn decode_payload(raw: &[u8], first_seq: u64, count: u32) -> Option<Vec<JournalEntry<'_>>> {
    struct Cursor<'a> {
        bytes: &'a [u8],
    }
    impl<'a> Cursor<'a> {
        fn take(&mut self, n: usize) -> Option<&'a [u8]> {
            let (head, tail) = self.bytes.split_at_checked(n)?;
            self.bytes = tail;
            Some(head)
        }
        fn u8(&mut self) -> Option<u8> {
            Some(self.take(1)?[0])
        }
        fn u32(&mut self) -> Option<u32> {
            Some(u32::from_le_bytes(self.take(4)?.try_into().ok()?))
        }
        fn i64(&mut self) -> Option<i64> {
            Some(i64::from_le_bytes(self.take(8)?.try_into().ok()?))
        }
        fn str(&mut self, n: usize) -> Option<&'a str> {
            std::str::from_utf8(self.take(n)?).ok()
        }
    }
    let count = count as usize;
    // Each entry takes at least 22 bytes; a count that could not fit is corrupt.
    if count > raw.len() / 22 {
        return None;
    }
    first_seq.checked_add(count as u64)?;
    let mut cursor = Cursor { bytes: raw };
    let mut entries = Vec::with_capacity(count);
    for index in 0..count as u64 {
        let event_time_ms = cursor.i64()?;
        let ingest_time_ms = cursor.i64()?;
        let account_len = usize::from(cursor.u8()?);
        let account_id = cursor.str(account_len)?;
        let region_len = usize::from(cursor.u8()?);
        let region = cursor.str(region_len)?;
        let json_len = cursor.u32()? as usize;
        let json = cursor.take(json_len)?;
        let event = PayloadEntry { event_time_ms, ingest_time_ms, account_id, region, json };
        entries.push(JournalEntry { seq: first_seq + index, event });
    }
    cursor.bytes.is_empty().then_some(entries)
}

/// The journal files in a directory, oldest first, with the first sequence number each
/// may hold (from its name).
pub fn list_files(dir: &Path) -> Result<Vec<(u64, PathBuf)>, StoreError> {
    let mut files = Vec::new();
    for entry in fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let path = entry.map_err(StoreError::io(dir))?.path();
        let first_seq = path
            .file_name()
            .and_then(|name| name.to_str())
            .and_then(|name| name.strip_suffix(".wal"))
            .and_then(|stem| stem.parse::<u64>().ok());
        if let Some(first_seq) = first_seq {
            files.push((first_seq, path));
        }
    }
    files.sort();
    Ok(files)
}

pub fn file_name(first_seq: u64) -> String {
    format!("{first_seq:020}.wal")
}

/// Whether the file system takes direct writes aligned to [`BLOCK`] for `file`, and if so
/// switches it to them. Linux reports the alignment direct I/O needs through statx (since
/// 6.1); a kernel or file system that reports none gets buffered writes.
#[allow(unsafe_code)]
fn use_direct_writes(file: &File) -> bool {
    use std::os::fd::AsRawFd;
    /// `STATX_DIOALIGN` of linux/stat.h.
    const STATX_DIOALIGN: u32 = 0x2000;
    let fd = file.as_raw_fd();
    // SAFETY: `statx` is a plain C struct of integers, for which all-zero bytes are valid.
    let mut stat: libc::statx = unsafe { std::mem::zeroed() };
    // SAFETY: statx only writes the one struct it is given; with AT_EMPTY_PATH and an
    // empty path it describes `fd`, which `file` keeps open.
    let found = unsafe { libc::statx(fd, c"".as_ptr(), libc::AT_EMPTY_PATH, STATX_DIOALIGN, &mut stat) } == 0;
    let fits = |align: u32| (BLOCK as u32).is_multiple_of(align);
    if !(found
        && stat.stx_mask & STATX_DIOALIGN != 0
        && fits(stat.stx_dio_mem_align)
        && fits(stat.stx_dio_offset_align))
    {
        return false;
    }
    // SAFETY: fcntl reads and sets the flags of `fd`, which `file` keeps open.
    unsafe {
        let flags = libc::fcntl(fd, libc::F_GETFL);
        flags >= 0 && libc::fcntl(fd, libc::F_SETFL, flags | libc::O_DIRECT) == 0
    }
}

/// What a sealed journal file is renamed to before it is deleted: recovery no longer reads
/// it, whatever state the deletion leaves it in.
const RETIRED_SUFFIX: &str = ".wal.retired";

/// Deletes a journal file whose events are all sealed. It is cut down in steps first:
/// freeing a file's blocks holds up the file system's next journal commit, which every
/// `fdatasync` of this journal waits for, and with online discard that takes as long as
/// the disk takes to discard them (60 ms for a 300 MB file here, 10 ms for 60 MB).
pub fn remove_sealed(path: &Path) -> Result<(), StoreError> {
    let retired = path.with_extension(&RETIRED_SUFFIX[1..]);
    fs::rename(path, &retired).map_err(StoreError::io(path))?;
    // Durable before any of it is cut: the cut must never show under the journal's name.
    sync_dir(path.parent().unwrap_or(Path::new(".")))?;
    remove_in_steps(&retired)
}

/// Finishes deleting the journal files that [`remove_sealed`] had renamed when the process
/// stopped.
pub fn remove_retired(dir: &Path) -> Result<(), StoreError> {
    for entry in fs::read_dir(dir).map_err(StoreError::io(dir))? {
        let path = entry.map_err(StoreError::io(dir))?.path();
        if path.file_name().and_then(|name| name.to_str()).is_some_and(|name| name.ends_with(RETIRED_SUFFIX)) {
            remove_in_steps(&path)?;
        }
    }
    Ok(())
}

fn remove_in_steps(path: &Path) -> Result<(), StoreError> {
    /// Bytes freed at a time, and the pause after each, which lets the `fdatasync`s of the
    /// journal's writer commit in between.
    const STEP: u64 = 16 * 1024 * 1024;
    const PAUSE: std::time::Duration = std::time::Duration::from_millis(2);
    let file = OpenOptions::new().write(true).open(path).map_err(StoreError::io(path))?;
    let mut len = file.metadata().map_err(StoreError::io(path))?.len();
    while len > STEP {
        len -= STEP;
        file.set_len(len).map_err(StoreError::io(path))?;
        std::thread::sleep(PAUSE);
    }
    drop(file);
    fs::remove_file(path).map_err(StoreError::io(path))
}

/// What recovery found in the journal.
#[derive(Debug, Default, PartialEq, Eq)]
pub struct ReplayReport {
    pub frames: u64,
    pub events: u64,
    /// Bytes of a torn, never-acknowledged tail that were cut off.
    pub torn_bytes: u64,
    pub last_seq: Option<u64>,
}

/// Reads every frame of every journal file in order and hands each entry to `visit`.
/// Cuts off a torn tail of the newest file; refuses any other damage.
pub fn replay(dir: &Path, visit: impl FnMut(JournalEntry<'_>)) -> Result<ReplayReport, StoreError> {
    read_frames(dir, Recovery::CutTornTail, visit)
}

/// Reads the journal as [`replay`] does, but changes nothing: a torn tail (never
/// acknowledged) is skipped and left in place. For offline readers such as verifiers.
pub fn read_only(dir: &Path, visit: impl FnMut(JournalEntry<'_>)) -> Result<ReplayReport, StoreError> {
    read_frames(dir, Recovery::LeaveAsIs, visit)
}

/// What recovery does with a torn tail.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Recovery {
    CutTornTail,
    LeaveAsIs,
}

fn read_frames(
    dir: &Path,
    recovery: Recovery,
    mut visit: impl FnMut(JournalEntry<'_>),
) -> Result<ReplayReport, StoreError> {
    let files = list_files(dir)?;
    let mut report = ReplayReport::default();
    for (index, (_, path)) in files.iter().enumerate() {
        let is_newest = index + 1 == files.len();
        let mut bytes = Vec::new();
        File::open(path).and_then(|mut file| file.read_to_end(&mut bytes)).map_err(StoreError::io(path))?;
        let mut offset = 0;
        let mut buffer = Vec::new();
        while offset < bytes.len() {
            let checked = match read_frame(&bytes[offset..]) {
                Ok(frame) => frame_entries(&frame, &mut buffer).map(|entries| (entries, frame.len)),
                Err(error) => Err(error),
            };
            match checked {
                Ok((entries, len)) => {
                    report.frames += 1;
                    for entry in entries {
                        report.events += 1;
                        report.last_seq = Some(entry.seq);
                        visit(entry);
                    }
                    offset += len;
                }
                Err(_) if is_block_padding(&bytes[offset..]) => break,
                Err(error) => {
                    let torn = is_newest && !has_valid_frame_after(&bytes, offset + 1);
                    if !torn {
                        let detail = match error {
                            FrameError::Truncated => "frame runs past the end of a sealed journal file",
                            FrameError::Invalid(why) => why,
                        };
                        return Err(StoreError::Corrupt {
                            path: path.clone(),
                            offset: offset as u64,
                            what: "journal frame",
                            detail: detail.to_owned(),
                        });
                    }
                    report.torn_bytes = (bytes.len() - offset) as u64;
                    if recovery == Recovery::LeaveAsIs {
                        break;
                    }
                    tracing::warn!(path = %path.display(), offset, bytes = report.torn_bytes, "cutting off a torn journal tail");
                    let file = OpenOptions::new().write(true).open(path).map_err(StoreError::io(path))?;
                    file.set_len(offset as u64).map_err(StoreError::io(path))?;
                    file.sync_all().map_err(StoreError::io(path))?;
                    break;
                }
            }
        }
    }
    Ok(report)
}

/// Whether `rest`, what follows a file's last frame, is the zeros a direct write puts
/// after it up to the next block boundary.
fn is_block_padding(rest: &[u8]) -> bool {
    rest.len() < BLOCK && rest.iter().all(|&byte| byte == 0)
}

/// Whether a valid frame starts anywhere at or after `from`: if one does, the damage
/// before it is not a torn tail.
fn has_valid_frame_after(bytes: &[u8], from: usize) -> bool {
    let magic = MAGIC.to_le_bytes();
    let mut at = from;
    while let Some(found) = bytes.get(at..).and_then(|rest| rest.windows(4).position(|window| window == magic)) {
        if read_frame(&bytes[at + found..]).is_ok() {
            return true;
        }
        at += found + 1;
    }
    false
}

/// The file the writer appends to. Frames are staged with [`JournalWriter::stage`] and
/// written and synced together by [`JournalWriter::write_staged`].
pub struct JournalWriter {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// The bytes of frames in the file. A directly written file has zeros after them up to
    /// the next multiple of [`BLOCK`].
    len: u64,
    sync: bool,
    /// Whether `file` writes with `O_DIRECT` (see [`use_direct_writes`]).
    direct: bool,
    /// `start` bytes of slack that align what follows, then (direct writes only) the file's
    /// last partial block, then the staged frames.
    staged: Vec<u8>,
    start: usize,
}

impl JournalWriter {
    /// Opens a new journal file for events from `first_seq` on, for direct writes where
    /// the file system takes them (see [`use_direct_writes`]), else buffered.
    pub fn create(dir: &Path, first_seq: u64, sync: bool) -> Result<JournalWriter, StoreError> {
        let path = dir.join(file_name(first_seq));
        let file =
            OpenOptions::new().create(true).write(true).truncate(false).open(&path).map_err(StoreError::io(&path))?;
        let len = file.metadata().map_err(StoreError::io(&path))?.len();
        if sync {
            sync_dir(dir)?;
        }
        // Recovery leaves a file of this name only empty; one that holds frames is appended
        // to as it is, without the block arithmetic.
        let direct = len == 0 && use_direct_writes(&file);
        let mut writer =
            JournalWriter { dir: dir.to_owned(), path, file, len, sync, direct, staged: Vec::new(), start: 0 };
        writer.reserve(0);
        Ok(writer)
    }

    /// Adds a frame of `payload`'s events, numbered from `first_seq`, to the next write.
    pub fn stage(&mut self, first_seq: u64, payload: &Payload) {
        if self.staged.capacity() - self.staged.len() < payload.frame_len() + BLOCK {
            self.reserve(payload.frame_len());
        }
        encode_frame(first_seq, payload, &mut self.staged);
    }

    /// Makes room for `bytes` of frames in the next write, so that staging them does not
    /// move the buffer, which would cost a copy to align it again.
    pub fn reserve(&mut self, bytes: usize) {
        self.staged.reserve(bytes + 2 * BLOCK);
        if self.direct {
            self.align_staged();
        }
    }

    pub fn has_staged(&self) -> bool {
        self.staged.len() > self.start + self.tail_len()
    }

    /// Writes the staged frames and makes them durable. On failure they are dropped and
    /// the file is cut back to its previous length, so that a later write starts on a
    /// frame boundary.
    pub fn write_staged(&mut self) -> Result<(), StoreError> {
        let frames = self.staged.len() - self.start - self.tail_len();
        match self.write_and_sync() {
            Ok(()) => {
                self.len += frames as u64;
                self.keep_tail();
                Ok(())
            }
            Err(source) => {
                self.staged.truncate(self.start + self.tail_len());
                if let Err(truncate_error) = self.file.set_len(self.len) {
                    tracing::error!(path = %self.path.display(), error = %truncate_error, "could not cut a failed journal write back");
                }
                Err(StoreError::Io { path: self.path.clone(), source })
            }
        }
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The bytes of the file's last partial block, which a direct write rewrites.
    fn tail_len(&self) -> usize {
        if self.direct { (self.len % BLOCK as u64) as usize } else { 0 }
    }

    fn write_and_sync(&mut self) -> std::io::Result<()> {
        if self.direct {
            let len = self.staged.len();
            let pad = (len - self.start).next_multiple_of(BLOCK) - (len - self.start);
            self.staged.resize(len + pad, 0);
            // Padding can outgrow the reserved room only if staging did.
            self.align_staged();
            let offset = self.len - self.tail_len() as u64;
            let result = self.file.write_all_at(&self.staged[self.start..], offset);
            self.staged.truncate(self.staged.len() - pad);
            result?;
        } else {
            self.file.write_all_at(&self.staged, self.len)?;
        }
        if self.sync { self.file.sync_data() } else { Ok(()) }
    }

    /// Keeps the bytes after the first `start` at a block-aligned address, as direct
    /// writes need, by changing how many bytes of slack come before them.
    fn align_staged(&mut self) {
        loop {
            let want = self.staged.as_ptr().align_offset(BLOCK);
            match want.cmp(&self.start) {
                std::cmp::Ordering::Equal => return,
                std::cmp::Ordering::Less => {
                    self.staged.drain(..self.start - want);
                }
                std::cmp::Ordering::Greater => {
                    let more = want - self.start;
                    if self.staged.capacity() - self.staged.len() < more {
                        // Growing moves the buffer: align for where it lands.
                        self.staged.reserve(more + BLOCK);
                        continue;
                    }
                    self.staged.splice(..0, std::iter::repeat_n(0, more));
                }
            }
            self.start = want;
        }
    }

    /// After a write: direct writes keep the file's new last partial block at `start`
    /// for the next write to begin with; buffered writes keep nothing.
    fn keep_tail(&mut self) {
        if self.direct {
            // The written bytes began block-aligned at `start`, and the file's last block
            // boundary lies `tail` bytes before their end: the tail moves to an aligned place.
            let tail = self.tail_len();
            self.staged.drain(self.start..self.staged.len() - tail);
        } else {
            self.staged.clear();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn entry(seq: u64, json: &str) -> JournalEntry<'_> {
        let event = PayloadEntry {
            event_time_ms: 1000 + seq as i64,
            ingest_time_ms: 5,
            account_id: "123456789012",
            region: "us-east-1",
            json: json.as_bytes(),
        };
        JournalEntry { seq, event }
    }

    /// One frame holding consecutive entries.
    fn encode(entries: &[JournalEntry<'_>], out: &mut Vec<u8>) {
        encode_frame(entries[0].seq, &encode_payload(entries.iter().map(|entry| entry.event)), out);
    }

    fn collect(dir: &Path) -> Result<(Vec<u64>, ReplayReport), StoreError> {
        let mut seqs = Vec::new();
        let report = replay(dir, |entry| seqs.push(entry.seq))?;
        Ok((seqs, report))
    }

    /// Writes each group of entries as one frame, in a write of its own; returns the file
    /// and the bytes of frames in it.
    fn write_frames(dir: &Path, first_seq: u64, frames: &[Vec<JournalEntry<'_>>]) -> (PathBuf, u64) {
        let mut writer = JournalWriter::create(dir, first_seq, false).unwrap();
        for frame in frames {
            writer.stage(frame[0].seq, &encode_payload(frame.iter().map(|entry| entry.event)));
            writer.write_staged().unwrap();
        }
        (writer.path.clone(), writer.len)
    }

    #[test]
    fn round_trips_frames_across_files() {
        let dir = tempfile::tempdir().unwrap();
        write_frames(dir.path(), 1, &[vec![entry(1, "{}"), entry(2, r#"{"a":1}"#)], vec![entry(3, "{}")]]);
        write_frames(dir.path(), 4, &[vec![entry(4, "{}")]]);
        let mut seen = Vec::new();
        replay(dir.path(), |e| seen.push((e.seq, e.event.json.to_vec(), e.event.account_id.to_owned()))).unwrap();
        assert_eq!(seen.iter().map(|s| s.0).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
        assert_eq!(seen[1].1, br#"{"a":1}"#);
    }

    #[test]
    fn cuts_a_torn_tail_at_every_length() {
        let mut full = Vec::new();
        encode(&[entry(1, "{}")], &mut full);
        let first_len = full.len();
        encode(&[entry(2, r#"{"x":"y"}"#)], &mut full);
        for cut in first_len..full.len() {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join(file_name(1));
            fs::write(&path, &full[..cut]).unwrap();
            let (seqs, report) = collect(dir.path()).unwrap();
            assert_eq!(seqs, vec![1], "cut at {cut}");
            assert_eq!(report.torn_bytes, (cut - first_len) as u64);
            assert_eq!(fs::metadata(&path).unwrap().len(), first_len as u64);
        }
    }

    #[test]
    fn names_corruption_before_valid_frames() {
        let dir = tempfile::tempdir().unwrap();
        let (path, _) = write_frames(dir.path(), 1, &[vec![entry(1, r#"{"k":"v"}"#)], vec![entry(2, "{}")]]);
        let mut bytes = fs::read(&path).unwrap();
        bytes[HEADER_LEN + 10] ^= 0x40;
        fs::write(&path, &bytes).unwrap();
        match collect(dir.path()) {
            Err(StoreError::Corrupt { offset: 0, what: "journal frame", .. }) => {}
            other => panic!("expected corruption at offset 0, got {other:?}"),
        }
    }

    #[test]
    fn names_damage_in_an_older_file() {
        let dir = tempfile::tempdir().unwrap();
        let (old, frames_len) = write_frames(dir.path(), 1, &[vec![entry(1, "{}")]]);
        write_frames(dir.path(), 2, &[vec![entry(2, "{}")]]);
        let bytes = fs::read(&old).unwrap();
        fs::write(&old, &bytes[..frames_len as usize - 1]).unwrap();
        assert!(matches!(collect(dir.path()), Err(StoreError::Corrupt { .. })));
    }

    /// Rounds of one to many frames, small and over a block, each written and synced: the
    /// file holds exactly the frames a buffered writer would, then zeros to a block boundary.
    #[test]
    fn direct_writes_keep_every_frame_across_block_boundaries() {
        let dir = tempfile::tempdir().unwrap();
        let mut writer = JournalWriter::create(dir.path(), 1, true).unwrap();
        let texts: Vec<String> = (0..40).map(|n| format!(r#"{{"n":"{}"}}"#, "x".repeat(n * 397 % 9000))).collect();
        let mut expected = Vec::new();
        let mut seq = 1;
        for round in 0..texts.len() / 4 {
            for frame in 0..round % 4 + 1 {
                let text = &texts[(round * 3 + frame) % texts.len()];
                let payload = encode_payload([entry(seq, text).event]);
                encode_frame(seq, &payload, &mut expected);
                writer.stage(seq, &payload);
                seq += 1;
            }
            writer.write_staged().unwrap();
            assert!(!writer.has_staged());
        }
        let bytes = fs::read(&writer.path).unwrap();
        assert_eq!(writer.len, expected.len() as u64);
        assert_eq!(&bytes[..expected.len()], &expected[..]);
        if writer.direct {
            assert_eq!(bytes.len(), expected.len().next_multiple_of(BLOCK));
        }
        assert!(bytes[expected.len()..].iter().all(|&byte| byte == 0));
        let (seqs, report) = collect(dir.path()).unwrap();
        assert_eq!(seqs, (1..seq).collect::<Vec<_>>());
        assert_eq!(report.torn_bytes, 0);
    }

    /// The zeros after the last frame end an older file as cleanly as the newest.
    #[test]
    fn block_padding_ends_any_file() {
        let dir = tempfile::tempdir().unwrap();
        let (old, frames_len) = write_frames(dir.path(), 1, &[vec![entry(1, "{}")], vec![entry(2, "{}")]]);
        let mut bytes = fs::read(&old).unwrap();
        bytes.resize(frames_len as usize + BLOCK - 1, 0);
        fs::write(&old, &bytes).unwrap();
        write_frames(dir.path(), 3, &[vec![entry(3, "{}")]]);
        assert_eq!(
            collect(dir.path()).unwrap(),
            (vec![1, 2, 3], ReplayReport { frames: 3, events: 3, torn_bytes: 0, last_seq: Some(3) })
        );
        // A whole block of zeros is not padding a writer leaves.
        bytes.resize(frames_len as usize + BLOCK, 0);
        fs::write(&old, &bytes).unwrap();
        assert!(matches!(collect(dir.path()), Err(StoreError::Corrupt { .. })));
    }

    /// A file left with frames in it (recovery keeps such a file only empty) is appended
    /// to as it is.
    #[test]
    fn appends_to_a_file_that_holds_frames() {
        let dir = tempfile::tempdir().unwrap();
        let (path, frames_len) = write_frames(dir.path(), 1, &[vec![entry(1, "{}")]]);
        let bytes = fs::read(&path).unwrap();
        fs::write(&path, &bytes[..frames_len as usize]).unwrap();
        write_frames(dir.path(), 1, &[vec![entry(2, "{}")], vec![entry(3, "{}")]]);
        assert_eq!(collect(dir.path()).unwrap().0, vec![1, 2, 3]);
    }

    /// A sealed file stops being part of the journal when it is renamed, before it is cut
    /// down: a stop part-way leaves nothing that recovery reads, and the next open
    /// finishes the deletion.
    #[test]
    fn sealed_files_leave_the_journal_before_they_are_cut_down() {
        let dir = tempfile::tempdir().unwrap();
        let (old, _) = write_frames(dir.path(), 1, &[vec![entry(1, "{}")]]);
        let (newer, _) = write_frames(dir.path(), 2, &[vec![entry(2, "{}")]]);
        // As a stop between the rename and the deletion leaves it: renamed, and cut mid-frame.
        let retired = old.with_extension("wal.retired");
        fs::rename(&old, &retired).unwrap();
        OpenOptions::new().write(true).open(&retired).unwrap().set_len(5).unwrap();
        assert_eq!(collect(dir.path()).unwrap().0, vec![2]);
        remove_retired(dir.path()).unwrap();
        assert!(!retired.exists());

        // A file larger than a step goes the same way.
        OpenOptions::new().write(true).open(&newer).unwrap().set_len(40 * 1024 * 1024).unwrap();
        remove_sealed(&newer).unwrap();
        assert_eq!(fs::read_dir(dir.path()).unwrap().count(), 0);
    }

    /// Frames written before payloads were stored raw hold them zstd-compressed.
    #[test]
    fn reads_compressed_payloads_of_earlier_versions() {
        let entries = [entry(7, r#"{"a":"b"}"#), entry(8, "{}")];
        let payload = encode_payload(entries.iter().map(|entry| entry.event));
        let compressed = zstd::bulk::compress(&payload.raw, 3).unwrap();
        let mut body = Vec::new();
        body.extend_from_slice(&7u64.to_le_bytes());
        body.extend_from_slice(&2u32.to_le_bytes());
        body.extend_from_slice(&(payload.raw.len() as u32).to_le_bytes());
        body.extend_from_slice(&compressed);
        let mut frame = Vec::new();
        frame.extend_from_slice(&MAGIC.to_le_bytes());
        frame.extend_from_slice(&(body.len() as u32).to_le_bytes());
        frame.extend_from_slice(&crc32c::crc32c(&body).to_le_bytes());
        frame.extend_from_slice(&body);
        let dir = tempfile::tempdir().unwrap();
        fs::write(dir.path().join(file_name(7)), &frame).unwrap();
        let mut seen = Vec::new();
        replay(dir.path(), |e| seen.push((e.seq, e.event.json.to_vec()))).unwrap();
        assert_eq!(seen, vec![(7, br#"{"a":"b"}"#.to_vec()), (8, b"{}".to_vec())]);
    }

    #[test]
    fn never_panics_on_garbage() {
        for seed in 0u32..200 {
            let mut bytes = Vec::new();
            encode(&[entry(1, r#"{"a":"b"}"#)], &mut bytes);
            let at = (seed as usize * 7) % bytes.len();
            bytes[at] = bytes[at].wrapping_add(seed as u8 | 1);
            let mut buffer = Vec::new();
            if let Ok(frame) = read_frame(&bytes) {
                let _ = frame_entries(&frame, &mut buffer);
            }
            let _ = read_frame(&bytes[..at]);
        }
    }
}
