//! The Parquet file of a sealed segment: its columns, how they are laid out on disk, and
//! reading single rows back by page.
//!
//! Only `event_json` and the columns of the members moved out of it ([`moved`]) are ever
//! read back by Trailkeeper (the lookup index answers everything else); the other columns
//! are there for SQL engines. Reads go through
//! `pread` on a shared file handle, so any number of threads can read one segment at once,
//! and use the cached offset index so that only the data pages holding the asked rows are
//! read and decompressed.

use std::cell::RefCell;
use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder};
use arrow_array::{Array as _, ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use arrow_select::interleave::interleave_record_batch;
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReader, ParquetRecordBatchReaderBuilder,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::column::page::{Page as ParquetPage, PageReader as _};
use parquet::errors::ParquetError;
use parquet::file::metadata::{ColumnChunkMetaData, KeyValue, PageIndexPolicy, SortingColumn};
use parquet::file::page_index::offset_index::PageLocation;
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{ChunkReader, Length};
use parquet::file::serialized_reader::SerializedPageReader;
use parquet::schema::types::ColumnPath;
use trailkeeper_core::Category;

use super::cache::{Page, PageCache, PageValues};
use super::index::IdDigest;
use super::moved::{self, MOVED, MOVED_COUNT, MOVED_PAGE_BYTES};
use crate::{StoreError, StoredEvent};

const EVENT_ID: &str = MOVED[0].column;
/// The columns [`file_order`] sorts rows by, declared as the file's sorting columns, with
/// whether their nulls come first.
const SORTED_BY: [(&str, bool); 3] = [("username", true), ("event_source", false), ("event_name", false)];
const EVENT_JSON: &str = "event_json";
/// The key of the file's key-value metadata that holds the zstd level its columns were
/// written at (the moved members' columns are always at level 1). Compaction reads it to
/// know which segments a settled partition has yet to write small.
const ZSTD_LEVEL_KEY: &str = "trailkeeper.zstd_level";

/// Arrow batches are cut at this many rows or JSON bytes, whichever comes first, to bound
/// the writer's memory and keep string offsets within i32 (256 KB records allowed).
const BATCH_ROWS: usize = 8192;
const BATCH_JSON_BYTES: usize = 64 << 20;

/// The knobs that trade disk size against point-read cost.
///
/// Measured with an earlier home-made generator (since removed) on 200,000 management
/// events of 1,495 B of JSON on average, 2 cores, release build, with rows in event key
/// order. Parquet bytes per event (the `.idx` adds 7.9), and `read_json` latency p50 / p99
/// for one random row and for 50 rows scattered through the segment:
///
/// | JSON page | zstd | Parquet B/event | 1 row µs | 50 rows ms | write events/s |
/// |---|---|---|---|---|---|
/// | 64 KiB  | 3 | 229.7 | 54 / 86   | 1.5 / 1.6 | 154,000 |
/// | 128 KiB | 3 | 211.5 | 75 / 122  | 2.7 / 6.9 | 172,000 |
/// | 256 KiB | 3 | 191.1 | 107 / 154 | 4.4 / 8.6 | 177,000 |
/// | 128 KiB | 6 | 194.8 | 65 / 99   | 2.2 / 5.5 | 86,000  |
/// | 1 MiB   | 3 | 172.4 | 319 / 373 | 12.7 / 21.8 | 160,000 (100,000 events) |
///
/// `event_json` was 87% of the file and zstd restarts on every page, so the page size is
/// the knob. 128 KiB is chosen: it is the largest page at which even the worst case (50
/// rows on 50 different pages, 2.7 ms of one core) leaves LookupEvents' 500 requests/s on
/// 2 cores inside the CPU budget. The row group size (128Ki or 1Mi rows) changed neither
/// figure; 128Ki rows gives SQL engines parallelism.
///
/// Measure layouts now with `crates/bench/examples/segment_layout.rs` on the realistic
/// generator (1,541 B of JSON per event). With rows in [`file_order`], 128 KiB pages at
/// level 1 take 186.1 B/event of Parquet (plus 12.1 of `.idx`) against 192.8 at level 3,
/// decode about 10% faster (1 row p50 45 against 51 µs, 50 scattered rows about 2.0
/// against 2.3 ms) and seal no slower (150–173k against 135–156k events/s in three
/// alternating runs), so level 1 is the default. In event key order the same pages took
/// 258.3 at level 3. For scale: the JSON as one zstd stream is 132 B/event at level 3 and
/// 107 at level 19 in event key order; a 54,000-event segment in file order at level 3 holds
/// 152 B/event of `event_json` next to 20.8 of `event_id` (random UUIDs).
///
/// With `eventID` and `requestID` moved to columns of their own ([`moved`]), the same
/// 200,000 events take 159.4 B/event of Parquet instead of 186.1: random IDs in the middle
/// of each record were what kept zstd from the JSON's repeats. A point read then decodes
/// up to two 8 KiB pages beside its `event_json` page: 1 row p50 0.045 → 0.064 ms, 50
/// scattered rows 1.9 → 2.6 ms (no page cache).
#[derive(Debug, Clone, Copy)]
pub(super) struct TableLayout {
    /// Uncompressed size at which an `event_json` page is closed. Each point read
    /// decompresses one whole page; zstd compresses each page on its own.
    pub json_page_bytes: usize,
    /// Rows per row group: the unit of parallelism for SQL engines.
    pub row_group_rows: usize,
    pub zstd_level: i32,
}

impl TableLayout {
    pub(super) const DEFAULT: TableLayout =
        TableLayout { json_page_bytes: 128 << 10, row_group_rows: 128 << 10, zstd_level: 1 };

    /// How many rows the writer hands a column at a time; page size limits are checked
    /// only between these, so it must be small against a JSON page.
    fn write_batch_rows(&self) -> usize {
        (self.json_page_bytes / 4096).clamp(4, 1024)
    }
}

fn schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    // No column may be named account, region or date: those are the Hive partition keys.
    let mut fields = vec![
        Field::new("event_time", timestamp.clone(), false),
        Field::new(EVENT_ID, DataType::Utf8, false),
        Field::new("event_source", DataType::Utf8, false),
        Field::new("event_name", DataType::Utf8, false),
        Field::new("aws_region", DataType::Utf8, false),
        Field::new("recipient_account_id", DataType::Utf8, false),
        Field::new("event_category", DataType::Utf8, false),
        Field::new("read_only", DataType::Boolean, true),
        Field::new("username", DataType::Utf8, true),
        Field::new("access_key_id", DataType::Utf8, true),
    ];
    fields.extend(MOVED[1..].iter().map(|moved| Field::new(moved.column, DataType::Utf8, false)));
    fields.extend([
        Field::new("ingest_time", timestamp, false),
        Field::new("seq", DataType::Int64, false),
        Field::new(EVENT_JSON, DataType::Utf8, false),
    ]);
    Arc::new(Schema::new(fields))
}

fn writer_properties(schema: &Schema, layout: &TableLayout) -> Result<WriterProperties, ParquetError> {
    let column = |name: &str| ColumnPath::from(name);
    let sorting_columns = SORTED_BY
        .iter()
        .map(|&(name, nulls_first)| {
            let column_idx = i32::try_from(schema.index_of(name)?).unwrap_or(i32::MAX);
            Ok(SortingColumn { column_idx, descending: false, nulls_first })
        })
        .collect::<Result<Vec<_>, ParquetError>>()?;
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(layout.zstd_level)?))
        .set_max_row_group_row_count(Some(layout.row_group_rows.max(1)))
        .set_write_batch_size(layout.write_batch_rows())
        // Readers find pages through the offset index; min/max per page of long strings
        // would only grow the footer every reader loads.
        .set_column_statistics_enabled(column(EVENT_JSON), EnabledStatistics::None)
        .set_column_dictionary_enabled(column(EVENT_JSON), false)
        .set_column_data_page_size_limit(column(EVENT_JSON), layout.json_page_bytes)
        .set_sorting_columns(Some(sorting_columns))
        .set_key_value_metadata(Some(vec![KeyValue::new(ZSTD_LEVEL_KEY.to_owned(), layout.zstd_level.to_string())]));
    // Point reads take these pages as bare PLAIN values, so no dictionary; and they are
    // small, because each read decompresses a whole page for one value. Random IDs
    // compress no better in large pages, and worse at higher levels than 1 (8 KiB pages of
    // UUIDs: 19.9 B each at level 1, 20.6 at 3 to 9), whatever level the layout asks for.
    for moved in MOVED {
        builder = builder
            .set_column_statistics_enabled(column(moved.column), EnabledStatistics::None)
            .set_column_dictionary_enabled(column(moved.column), false)
            .set_column_data_page_size_limit(column(moved.column), MOVED_PAGE_BYTES)
            .set_column_compression(column(moved.column), Compression::ZSTD(ZstdLevel::try_new(1)?));
    }
    // Times and seqs move little between similar records: deltas pack them in a few bytes.
    for name in ["event_time", "ingest_time", "seq"] {
        builder = builder
            .set_column_dictionary_enabled(column(name), false)
            .set_column_encoding(column(name), Encoding::DELTA_BINARY_PACKED);
    }
    Ok(builder.build())
}

/// The order in which the Parquet file holds a segment's rows (given in event key order):
/// by user name (none first), event source, event name ([`SORTED_BY`]), then event key.
///
/// Records of one caller doing one thing differ in little but times and IDs, so zstd finds
/// most of a page in the page itself: on the realistic generator, a 14,000-event segment's
/// JSON pages take 150 B/event in this order against 218 in event key order (128 KiB pages,
/// level 3). It also keeps a user's events on few pages, which is what a lookup by user
/// name or access key reads; the index maps its rows to these.
pub(super) fn file_order(events: &[&StoredEvent]) -> Vec<u32> {
    // Each distinct (user, source, name) is looked up once per row and compared only among
    // the distinct ones; the rows then sort as integers. Comparing the rows' own texts made
    // every comparison chase two records through memory: a fifth of sealing's time.
    let mut groups: crate::HashMap<(Option<&str>, &str, &str), u32> = crate::HashMap::default();
    let group_of_row: Vec<u32> = crate::prefetched(events)
        .map(|event| {
            let fields = &event.fields;
            let next = groups.len() as u32;
            *groups.entry((fields.username(), fields.event_source(), fields.event_name())).or_insert(next)
        })
        .collect();
    let mut distinct: Vec<_> = groups.into_iter().collect();
    distinct.sort_unstable();
    let mut rank = vec![0u32; distinct.len()];
    for (position, &(_, group)) in distinct.iter().enumerate() {
        rank[group as usize] = position as u32;
    }
    // The row number breaks every tie, so an unstable sort keeps event key order within a
    // group.
    let mut keys: Vec<u64> = group_of_row
        .iter()
        .enumerate()
        .map(|(row, &group)| u64::from(rank[group as usize]) << 32 | row as u64)
        .collect();
    keys.sort_unstable();
    keys.into_iter().map(|key| key as u32).collect()
}

/// Writes `events`, in [`file_order`], to a new Parquet file at `path` and fsyncs it.
pub(super) fn write(path: &Path, events: &[&StoredEvent], layout: &TableLayout) -> Result<(), StoreError> {
    let parquet_error =
        |error: ParquetError| StoreError::Parquet { path: path.to_path_buf(), detail: error.to_string() };
    let schema = schema();
    let file = File::create(path).map_err(StoreError::io(path))?;
    let properties = writer_properties(&schema, layout).map_err(parquet_error)?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties)).map_err(parquet_error)?;
    let mut start = 0;
    while start < events.len() {
        let mut end = start;
        let mut json_bytes = 0;
        while end < events.len() && end - start < BATCH_ROWS && (end == start || json_bytes < BATCH_JSON_BYTES) {
            // The first read of each event in file order, which is not the order of memory.
            if let Some(&ahead) = events.get(end + crate::PREFETCH_AHEAD) {
                trailkeeper_core::prefetch::prefetch(ahead);
            }
            json_bytes += events[end].json.len();
            end += 1;
        }
        let batch = record_batch(&schema, &events[start..end]).map_err(|detail| StoreError::Io {
            path: path.to_path_buf(),
            source: io::Error::new(io::ErrorKind::InvalidInput, detail),
        })?;
        writer.write(&batch).map_err(parquet_error)?;
        start = end;
    }
    writer.finish().map_err(parquet_error)?;
    writer.inner().sync_all().map_err(StoreError::io(path))
}

/// Writes the rows of `inputs`, Parquet files of segments of one partition, as one new
/// Parquet file at `path` in [`file_order`], and fsyncs it. Each input already holds its
/// rows in that order, so this is a streaming merge: no record is parsed or split again,
/// and memory holds one batch per input.
///
/// Inputs must have this version's columns; a file of an older layout is refused.
pub(super) fn merge(path: &Path, inputs: &[&Path], layout: &TableLayout) -> Result<Merged, StoreError> {
    let schema = schema();
    let mut cursors = Vec::with_capacity(inputs.len());
    for &input in inputs {
        cursors.push(MergeCursor::open(input, &schema)?);
    }
    let parquet_error = |detail: String| StoreError::Parquet { path: path.to_path_buf(), detail };
    let file = File::create(path).map_err(StoreError::io(path))?;
    let properties = writer_properties(&schema, layout).map_err(|error| parquet_error(error.to_string()))?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties))
        .map_err(|error| parquet_error(error.to_string()))?;
    let mut picked: Vec<(usize, usize)> = Vec::with_capacity(BATCH_ROWS);
    let mut digests = Vec::with_capacity(cursors.iter().map(|cursor| cursor.placed.len()).sum());
    let (mut picked_json_bytes, mut written) = (0usize, 0usize);
    loop {
        // The input whose row sorts first, and the first row of all the others: inputs are
        // written a few seconds of ingest apart, so one input's rows follow each other in
        // runs, and a run costs one comparison a row instead of one per input.
        let mut live = (0..cursors.len()).filter(|&input| cursors[input].current.is_some());
        let Some(mut input) = live.next() else { break };
        let mut runner_up: Option<usize> = None;
        for other in live {
            if cursors[other].sort_key() < cursors[input].sort_key() {
                runner_up = Some(input);
                input = other;
            } else if runner_up.is_none_or(|runner_up| cursors[other].sort_key() < cursors[runner_up].sort_key()) {
                runner_up = Some(other);
            }
        }
        loop {
            let cursor = &mut cursors[input];
            let Some(current) = &cursor.current else { break };
            picked_json_bytes += current.json.value_length(cursor.row) as usize;
            cursor.placed[cursor.first_row + cursor.row] = u32::try_from(written + picked.len())
                .map_err(|_| parquet_error("too many rows to merge".to_owned()))?;
            picked.push((input, cursor.row));
            digests.push(IdDigest::of(current.event_id.value(cursor.row)));
            cursor.row += 1;
            let exhausted = cursor.row >= current.batch.num_rows();
            // The picked rows point into the inputs' current batches: they are written
            // before an input moves on to its next batch.
            if exhausted || picked.len() >= BATCH_ROWS || picked_json_bytes >= BATCH_JSON_BYTES {
                write_picked(&mut writer, &cursors, &picked).map_err(parquet_error)?;
                written += picked.len();
                picked.clear();
                picked_json_bytes = 0;
            }
            if exhausted {
                cursors[input].advance()?;
                break;
            }
            if runner_up.is_some_and(|runner_up| cursors[runner_up].sort_key() < cursors[input].sort_key()) {
                break;
            }
        }
    }
    writer.finish().map_err(|error| parquet_error(error.to_string()))?;
    writer.inner().sync_all().map_err(StoreError::io(path))?;
    let placed = cursors
        .into_iter()
        .map(|cursor| {
            if cursor.first_row == cursor.placed.len() {
                Ok(cursor.placed)
            } else {
                Err(StoreError::Parquet {
                    path: cursor.path.to_path_buf(),
                    detail: format!("{} rows read of the {} its footer counts", cursor.first_row, cursor.placed.len()),
                })
            }
        })
        .collect::<Result<_, _>>()?;
    Ok(Merged { placed, digests })
}

/// What [`merge`] tells the index about the file it wrote.
pub(super) struct Merged {
    /// For each input, the merged file's row of each of its rows.
    pub placed: Vec<Vec<u32>>,
    /// The eventID digest of each row of the merged file.
    pub digests: Vec<IdDigest>,
}

/// Input batches are this small: a merge holds one of each input at a time.
const MERGE_BATCH_ROWS: usize = 1024;

/// One input of [`merge`]: its reader, its current batch and where its rows went.
struct MergeCursor<'a> {
    path: &'a Path,
    reader: ParquetRecordBatchReader,
    current: Option<MergeBatch>,
    /// The next row of the current batch.
    row: usize,
    /// The file row of the current batch's first row; once the reader is done, the count.
    first_row: usize,
    /// The merged file's row of each of this file's rows.
    placed: Vec<u32>,
}

/// A batch with the columns [`file_order`] sorts by, and the eventIDs.
struct MergeBatch {
    batch: RecordBatch,
    event_id: StringArray,
    username: StringArray,
    event_source: StringArray,
    event_name: StringArray,
    event_time: TimestampMicrosecondArray,
    seq: Int64Array,
    json: StringArray,
}

impl<'a> MergeCursor<'a> {
    fn open(path: &'a Path, schema: &SchemaRef) -> Result<MergeCursor<'a>, StoreError> {
        let parquet_error = |detail: String| StoreError::Parquet { path: path.to_path_buf(), detail };
        let file = File::open(path).map_err(StoreError::io(path))?;
        let builder =
            ParquetRecordBatchReaderBuilder::try_new(file).map_err(|error| parquet_error(error.to_string()))?;
        if builder.schema().fields() != schema.fields() {
            return Err(parquet_error("the file has an older column layout".to_owned()));
        }
        let rows = usize::try_from(builder.metadata().file_metadata().num_rows()).unwrap_or(0);
        let reader =
            builder.with_batch_size(MERGE_BATCH_ROWS).build().map_err(|error| parquet_error(error.to_string()))?;
        let mut cursor = MergeCursor { path, reader, current: None, row: 0, first_row: 0, placed: vec![0; rows] };
        cursor.load_next()?;
        Ok(cursor)
    }

    /// Moves past the current batch to the next one that has rows.
    fn advance(&mut self) -> Result<(), StoreError> {
        if let Some(current) = self.current.take() {
            self.first_row += current.batch.num_rows();
        }
        self.load_next()
    }

    fn load_next(&mut self) -> Result<(), StoreError> {
        let parquet_error = |detail: String| StoreError::Parquet { path: self.path.to_path_buf(), detail };
        self.row = 0;
        for batch in self.reader.by_ref() {
            let batch = batch.map_err(|error| parquet_error(error.to_string()))?;
            if batch.num_rows() == 0 {
                continue;
            }
            if self.first_row + batch.num_rows() > self.placed.len() {
                return Err(parquet_error("more rows than its footer counts".to_owned()));
            }
            let strings = |name: &str| typed_column::<StringArray>(&batch, name).cloned().map_err(parquet_error);
            self.current = Some(MergeBatch {
                username: strings("username")?,
                event_source: strings("event_source")?,
                event_name: strings("event_name")?,
                event_time: typed_column::<TimestampMicrosecondArray>(&batch, "event_time")
                    .cloned()
                    .map_err(parquet_error)?,
                seq: typed_column::<Int64Array>(&batch, "seq").cloned().map_err(parquet_error)?,
                json: strings(EVENT_JSON)?,
                event_id: strings(EVENT_ID)?,
                batch,
            });
            return Ok(());
        }
        Ok(())
    }

    /// The current row's place in [`file_order`]: user name (none first), event source,
    /// event name, then event key.
    fn sort_key(&self) -> Option<(Option<&str>, &str, &str, i64, i64)> {
        let current = self.current.as_ref()?;
        let row = self.row;
        let username = current.username.is_valid(row).then(|| current.username.value(row));
        Some((
            username,
            current.event_source.value(row),
            current.event_name.value(row),
            current.event_time.value(row),
            current.seq.value(row),
        ))
    }
}

/// The column `name` of `batch` as the array type it must have.
fn typed_column<'b, T: 'static>(batch: &'b RecordBatch, name: &str) -> Result<&'b T, String> {
    let column = batch.column_by_name(name).ok_or_else(|| format!("no {name} column in a batch"))?;
    column.as_any().downcast_ref::<T>().ok_or_else(|| format!("{name} is not of the type this version writes"))
}

/// Writes the rows `picked` (input, row of its current batch) as one batch.
fn write_picked(
    writer: &mut ArrowWriter<File>,
    cursors: &[MergeCursor<'_>],
    picked: &[(usize, usize)],
) -> Result<(), String> {
    let mut slot = vec![usize::MAX; cursors.len()];
    let mut batches = Vec::with_capacity(cursors.len());
    for (input, cursor) in cursors.iter().enumerate() {
        if let Some(current) = &cursor.current {
            slot[input] = batches.len();
            batches.push(&current.batch);
        }
    }
    let indices: Vec<(usize, usize)> = picked.iter().map(|&(input, row)| (slot[input], row)).collect();
    let batch = interleave_record_batch(&batches, &indices).map_err(|error| error.to_string())?;
    writer.write(&batch).map_err(|error| error.to_string())
}

fn record_batch(schema: &SchemaRef, events: &[&StoredEvent]) -> Result<RecordBatch, String> {
    // One pass fills every column: each event's fields are a separate allocation, and the
    // JSON streamed through the cache between rows evicts them, so a pass per column paid
    // a cache miss per event per column.
    let rows = events.len();
    let json_bytes: usize = events.iter().map(|event| event.json.len()).sum();
    let text = || StringBuilder::with_capacity(rows, rows * 16);
    let mut json = StringBuilder::with_capacity(rows, json_bytes);
    let mut moved_columns: [StringBuilder; MOVED_COUNT] = std::array::from_fn(|_| text());
    let [mut event_source, mut event_name, mut region, mut account_id, mut category, mut username, mut access_key_id] =
        std::array::from_fn(|_| text());
    let mut read_only = BooleanBuilder::with_capacity(rows);
    let mut event_times = Vec::with_capacity(rows);
    let mut ingest_times = Vec::with_capacity(rows);
    let mut seqs = Vec::with_capacity(rows);
    let mut kept = Vec::new();
    for event in crate::prefetched(events) {
        let not_text = || format!("the JSON of event {} is not UTF-8", event.event_id());
        let fields = &event.fields;
        kept.clear();
        let values = moved::split(&event.json, &event.id_values, event.event_id().as_bytes(), &mut kept);
        json.append_value(std::str::from_utf8(&kept).map_err(|_| not_text())?);
        // `event_id` holds every row's eventID, moved from its record or not.
        moved_columns[0].append_value(event.event_id());
        for (column, value) in moved_columns.iter_mut().zip(values).skip(1) {
            column.append_value(std::str::from_utf8(value).map_err(|_| not_text())?);
        }
        event_source.append_value(fields.event_source());
        event_name.append_value(fields.event_name());
        region.append_value(event.region());
        account_id.append_value(event.account_id());
        category.append_value(category_name(event.category));
        read_only.append_option(fields.read_only);
        username.append_option(fields.username());
        access_key_id.append_option(fields.access_key_id());
        event_times.push(event.event_time_ms.saturating_mul(1000));
        ingest_times.push(event.ingest_time_ms.saturating_mul(1000));
        seqs.push(event.seq as i64);
    }
    let timestamps =
        |micros: Vec<i64>| -> ArrayRef { Arc::new(TimestampMicrosecondArray::from(micros).with_timezone("UTC")) };
    let finish = |column: &mut StringBuilder| -> ArrayRef { Arc::new(column.finish()) };
    let [mut event_id, mut others @ ..] = moved_columns;
    let mut columns: Vec<ArrayRef> = vec![
        timestamps(event_times),
        finish(&mut event_id),
        finish(&mut event_source),
        finish(&mut event_name),
        finish(&mut region),
        finish(&mut account_id),
        finish(&mut category),
        Arc::new(read_only.finish()),
        finish(&mut username),
        finish(&mut access_key_id),
    ];
    columns.extend(others.iter_mut().map(finish));
    columns.extend([timestamps(ingest_times), Arc::new(Int64Array::from(seqs)), finish(&mut json)]);
    RecordBatch::try_new(schema.clone(), columns).map_err(|error| error.to_string())
}

/// `eventCategory` as CloudTrail writes it.
fn category_name(category: Category) -> &'static str {
    match category {
        Category::Management => "Management",
        Category::Data => "Data",
        Category::Insight => "Insight",
        Category::NetworkActivity => "NetworkActivity",
        Category::Other => "Other",
    }
}

/// Streams the `seq`, `event_id` and `event_json` columns of a whole file, batch by batch,
/// with each record's moved members put back, and returns the number of rows read.
pub(super) fn read_all_rows(path: &Path, mut visit: impl FnMut(super::RawRow<'_>)) -> Result<u64, StoreError> {
    let parquet_error = |detail: String| StoreError::Parquet { path: path.to_path_buf(), detail };
    let file = File::open(path).map_err(StoreError::io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|error| parquet_error(error.to_string()))?;
    let schema = builder.parquet_schema();
    let leaf = |name: &str| schema.columns().iter().position(|column| column.name() == name);
    let mut leaves = Vec::new();
    for name in ["seq", EVENT_ID, EVENT_JSON] {
        leaves.push(leaf(name).ok_or_else(|| parquet_error(format!("no {name} column")))?);
    }
    // Files written before a member moved have no column for it.
    let moved_present: Vec<bool> = MOVED[1..].iter().map(|moved| leaf(moved.column).is_some()).collect();
    leaves.extend(MOVED[1..].iter().filter_map(|moved| leaf(moved.column)));
    let projection = ProjectionMask::leaves(schema, leaves);
    let reader = builder
        .with_projection(projection)
        .with_batch_size(4096)
        .build()
        .map_err(|error| parquet_error(error.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|error| parquet_error(error.to_string()))?;
        let seqs = typed_column::<Int64Array>(&batch, "seq").map_err(parquet_error)?;
        let strings = |name: &str| typed_column::<StringArray>(&batch, name).map_err(parquet_error);
        let (event_ids, jsons) = (strings(EVENT_ID)?, strings(EVENT_JSON)?);
        let mut moved_columns = vec![Some(event_ids)];
        for (moved, &present) in MOVED[1..].iter().zip(&moved_present) {
            moved_columns.push(if present { Some(strings(moved.column)?) } else { None });
        }
        for row in 0..batch.num_rows() {
            let kept = jsons.value(row);
            let holes = moved::holes(kept.as_bytes());
            let values: [Option<&[u8]>; MOVED_COUNT] =
                std::array::from_fn(|index| moved_columns[index].map(|column| column.value(row).as_bytes()));
            let joined;
            let record = if holes.iter().any(Option::is_some) {
                joined = String::from_utf8(moved::rejoin(kept.as_bytes(), &holes, &values))
                    .map_err(|_| parquet_error(format!("row {rows} is not UTF-8 once joined")))?;
                &joined
            } else {
                kept
            };
            visit(super::RawRow { seq: seqs.value(row), event_id: event_ids.value(row), event_json: record });
            rows += 1;
        }
    }
    Ok(rows)
}

/// An open segment Parquet file with what reading its two columns' pages needs from the
/// footer and the offset index. The rest of the footer is not kept: it cost about 35 KB
/// per segment, more than everything else an open segment holds.
pub(super) struct EventTable {
    path: PathBuf,
    file: Arc<SharedFile>,
    /// The row count of each row group.
    group_rows: Vec<usize>,
    event_id: ColumnPages,
    event_json: ColumnPages,
    /// The pages of each moved member's column after `event_id` ([`MOVED`]`[1..]`), where
    /// the file has one.
    moved: [Option<ColumnPages>; MOVED_COUNT - 1],
    /// The zstd level the file was written at; `None` in files written before it was kept.
    zstd_level: Option<i32>,
}

/// Where the data pages of one column are, so that a row's page is read without the rest.
struct ColumnPages {
    /// Each row group's chunk of the column, described to the page reader as uncompressed
    /// so that it hands over the zstd frame and [`decompress`] opens it with this thread's
    /// context: parquet-rs creates a compression and a decompression context for every
    /// page reader, which cost about as much as decompressing a small page.
    chunks: Vec<ColumnChunkMetaData>,
    /// Each row group's page locations, from the offset index.
    locations: Vec<Vec<PageLocation>>,
    /// The first row of each page, in file row numbers, then the row count.
    starts: Vec<u64>,
    /// Each page's row group and position in the group's offset index.
    places: Vec<(usize, usize)>,
}

impl ColumnPages {
    /// The page holding `row` (which is below the row count).
    fn page_of(&self, row: u32) -> usize {
        self.starts.partition_point(|&start| start <= u64::from(row)).saturating_sub(1)
    }

    fn row_count(&self, page: usize) -> usize {
        (self.starts[page + 1] - self.starts[page]) as usize
    }
}

impl EventTable {
    pub(super) fn open(path: &Path) -> Result<EventTable, StoreError> {
        let file = File::open(path).map_err(StoreError::io(path))?;
        let len = file.metadata().map_err(StoreError::io(path))?.len();
        let file = SharedFile { file: Arc::new(file), len };
        let parquet_error = |detail: String| StoreError::Parquet { path: path.to_path_buf(), detail };
        // The column index (per-page min/max) is never used here, so it is not loaded.
        let options = ArrowReaderOptions::new()
            .with_offset_index_policy(PageIndexPolicy::Required)
            .with_column_index_policy(PageIndexPolicy::Skip);
        let metadata = ArrowReaderMetadata::load(&file, options).map_err(|error| parquet_error(error.to_string()))?;
        let mut row_group_starts = vec![0u64];
        for row_group in metadata.metadata().row_groups() {
            let rows = u64::try_from(row_group.num_rows()).map_err(|_| parquet_error("negative row count".into()))?;
            row_group_starts.push(row_group_starts[row_group_starts.len() - 1] + rows);
        }
        let offset_index = metadata.metadata().offset_index().ok_or_else(|| parquet_error("no offset index".into()))?;
        let column_pages = |name: &str| -> Result<Option<ColumnPages>, StoreError> {
            let schema = metadata.parquet_schema();
            let Some(leaf) = schema.columns().iter().position(|column| column.name() == name) else {
                return Ok(None);
            };
            // Pages are parsed as bare values: the column must have no levels.
            let column = schema.column(leaf);
            if column.max_def_level() != 0 || column.max_rep_level() != 0 {
                return Err(parquet_error(format!("{name} is not a required flat column")));
            }
            let mut chunks = Vec::new();
            for row_group in metadata.metadata().row_groups() {
                let chunk = row_group.column(leaf);
                if !matches!(chunk.compression(), Compression::ZSTD(_)) {
                    return Err(parquet_error(format!("{name} is compressed with {}, not zstd", chunk.compression())));
                }
                chunks.push(
                    chunk
                        .clone()
                        .into_builder()
                        .set_compression(Compression::UNCOMPRESSED)
                        .build()
                        .map_err(|error| parquet_error(error.to_string()))?,
                );
            }
            let (mut starts, mut places, mut locations) = (Vec::new(), Vec::new(), Vec::new());
            for (group, columns) in offset_index.iter().enumerate() {
                let column = columns.get(leaf).ok_or_else(|| parquet_error(format!("no offset index for {name}")))?;
                locations.push(column.page_locations().clone());
                for (position, location) in column.page_locations().iter().enumerate() {
                    let first = u64::try_from(location.first_row_index)
                        .map_err(|_| parquet_error("negative page row".into()))?;
                    starts.push(row_group_starts[group] + first);
                    places.push((group, position));
                }
            }
            starts.push(row_group_starts[row_group_starts.len() - 1]);
            if !starts.is_sorted() {
                return Err(parquet_error(format!("{name} pages are out of order")));
            }
            if locations.len() != chunks.len() {
                return Err(parquet_error(format!("the offset index of {name} does not match the row groups")));
            }
            Ok(Some(ColumnPages { chunks, locations, starts, places }))
        };
        let required = |name: &str| column_pages(name)?.ok_or_else(|| parquet_error(format!("no {name} column")));
        let (event_id, event_json) = (required(EVENT_ID)?, required(EVENT_JSON)?);
        let mut moved = [const { None }; MOVED_COUNT - 1];
        for (pages, member) in moved.iter_mut().zip(&MOVED[1..]) {
            *pages = column_pages(member.column)?;
        }
        let group_rows = row_group_starts.windows(2).map(|pair| (pair[1] - pair[0]) as usize).collect();
        let zstd_level = metadata
            .metadata()
            .file_metadata()
            .key_value_metadata()
            .and_then(|pairs| pairs.iter().find(|pair| pair.key == ZSTD_LEVEL_KEY))
            .and_then(|pair| pair.value.as_deref()?.parse().ok());
        Ok(EventTable {
            path: path.to_path_buf(),
            file: Arc::new(file),
            group_rows,
            event_id,
            event_json,
            moved,
            zstd_level,
        })
    }

    pub(super) fn num_rows(&self) -> u64 {
        self.event_json.starts.last().copied().unwrap_or(0)
    }

    pub(super) fn file_bytes(&self) -> u64 {
        self.file.len
    }

    pub(super) fn zstd_level(&self) -> Option<i32> {
        self.zstd_level
    }

    /// The stored eventIDs of `rows`, in the order asked. Verifying a hash hit is a one-off
    /// read, so its pages are not cached.
    pub(super) fn read_event_ids(&self, rows: &[u32]) -> Result<Vec<Bytes>, StoreError> {
        self.read_values(&self.event_id, rows, None)
    }

    /// The records of `rows`, in the order asked (repeats allowed): their `event_json` with
    /// the moved members put back. Whole pages are decoded and kept in `cache` under
    /// `segment_id`; pages already there cost nothing.
    pub(super) fn read_json(&self, rows: &[u32], cache: &PageCache, segment_id: u64) -> Result<Vec<Bytes>, StoreError> {
        let kept = self.read_values(&self.event_json, rows, Some((cache, (segment_id, 0))))?;
        let holes: Vec<[Option<usize>; MOVED_COUNT]> = kept.iter().map(|text| moved::holes(text)).collect();
        let mut values: Vec<[Option<Bytes>; MOVED_COUNT]> = vec![[const { None }; MOVED_COUNT]; rows.len()];
        for index in 0..MOVED_COUNT {
            let column = match index {
                0 => &self.event_id,
                _ => match &self.moved[index - 1] {
                    Some(column) => column,
                    None => continue,
                },
            };
            let wanted: Vec<usize> = (0..rows.len()).filter(|&at| holes[at][index].is_some()).collect();
            if wanted.is_empty() {
                continue;
            }
            let wanted_rows: Vec<u32> = wanted.iter().map(|&at| rows[at]).collect();
            let read = self.read_values(column, &wanted_rows, Some((cache, (segment_id, 1 + index as u16))))?;
            for (at, value) in wanted.into_iter().zip(read) {
                values[at][index] = Some(value);
            }
        }
        Ok(kept
            .into_iter()
            .zip(holes)
            .zip(values)
            .map(|((kept, holes), values)| {
                if values.iter().all(Option::is_none) {
                    return kept;
                }
                Bytes::from(moved::rejoin(&kept, &holes, &values.each_ref().map(|value| value.as_deref())))
            })
            .collect())
    }

    /// The values of one column at `rows`, in the order asked (repeats allowed). Each page
    /// is read once; with a cache, under the (segment, column) given with it.
    fn read_values(
        &self,
        column: &ColumnPages,
        rows: &[u32],
        cache: Option<(&PageCache, (u64, u16))>,
    ) -> Result<Vec<Bytes>, StoreError> {
        let mut pages: Vec<usize> = rows.iter().map(|&row| column.page_of(row)).collect();
        pages.sort_unstable();
        pages.dedup();
        let mut decoded: Vec<(usize, Page)> = Vec::with_capacity(pages.len());
        for page in pages {
            let values = match cache {
                None => self.read_page(column, page)?,
                Some((cache, (segment_id, column_tag))) => {
                    let key = (segment_id, column_tag, page as u32);
                    match cache.get(key) {
                        Some(hit) => hit,
                        None => {
                            let read = self.read_page(column, page)?;
                            cache.insert(key, Arc::clone(&read));
                            read
                        }
                    }
                }
            };
            decoded.push((page, values));
        }
        rows.iter()
            .map(|&row| {
                let page = column.page_of(row);
                let at = decoded.binary_search_by_key(&page, |(number, _)| *number).map_err(|_| {
                    StoreError::Parquet { path: self.path.clone(), detail: format!("row {row} was not read back") }
                })?;
                self.value_at(column, &decoded[at].1, page, row)
            })
            .collect()
    }

    fn value_at(&self, column: &ColumnPages, values: &Page, page: usize, row: u32) -> Result<Bytes, StoreError> {
        values.get((u64::from(row) - column.starts[page]) as usize).ok_or_else(|| StoreError::Parquet {
            path: self.path.clone(),
            detail: format!("row {row} is past the end of its page or not UTF-8 text"),
        })
    }

    /// Reads and decompresses one data page of a column, through the offset index: only
    /// that page's bytes are read from the file.
    fn read_page(&self, column: &ColumnPages, page: usize) -> Result<Page, StoreError> {
        let parquet_error = |detail: String| StoreError::Parquet { path: self.path.clone(), detail };
        let (group, position) = column.places[page];
        // The reader is given the locations up to the page, so that it still sees where
        // the column chunk's first page starts, and steps over the earlier ones unread.
        let mut reader = SerializedPageReader::new(
            Arc::clone(&self.file),
            &column.chunks[group],
            self.group_rows[group],
            Some(column.locations[group][..=position].to_vec()),
        )
        .map_err(|error| parquet_error(error.to_string()))?;
        for _ in 0..position {
            reader.skip_next_page().map_err(|error| parquet_error(error.to_string()))?;
        }
        let page_rows = column.row_count(page);
        let (buffer, count) = match reader.get_next_page().map_err(|error| parquet_error(error.to_string()))? {
            Some(ParquetPage::DataPage { buf, num_values, encoding: Encoding::PLAIN, .. }) => {
                (decompress(&buf), num_values)
            }
            Some(ParquetPage::DataPageV2 {
                buf,
                num_values,
                encoding: Encoding::PLAIN,
                def_levels_byte_len: 0,
                rep_levels_byte_len: 0,
                is_compressed,
                ..
            }) => (if is_compressed { decompress(&buf) } else { Ok(buf) }, num_values),
            _ => return Err(parquet_error(format!("page {page} is not a plain data page"))),
        };
        let buffer = buffer.map_err(|detail| parquet_error(format!("page {page}: {detail}")))?;
        if count as usize != page_rows {
            return Err(parquet_error(format!("page {page} holds {count} values, its offset index {page_rows} rows")));
        }
        PageValues::parse(buffer, page_rows)
            .map(Arc::new)
            .ok_or_else(|| parquet_error(format!("page {page} does not hold {page_rows} strings")))
    }
}

/// No page Trailkeeper writes comes near this once decompressed (pages close at 128 KiB,
/// and one record is at most 256 KB); a larger claim is a damaged file.
const MAX_PAGE_BYTES: u64 = 16 << 20;

thread_local! {
    static DECOMPRESSOR: RefCell<Option<zstd::bulk::Decompressor<'static>>> = const { RefCell::new(None) };
}

/// Opens one page's zstd frame with the calling thread's decompression context.
fn decompress(frame: &[u8]) -> Result<Bytes, String> {
    let size = match zstd::zstd_safe::get_frame_content_size(frame) {
        Ok(Some(size)) if size <= MAX_PAGE_BYTES => size as usize,
        Ok(Some(size)) => return Err(format!("claims {size} bytes uncompressed")),
        Ok(None) | Err(_) => return Err("is not a zstd frame with its content size".to_owned()),
    };
    DECOMPRESSOR.with(|cell| {
        let mut cell = cell.borrow_mut();
        let decompressor = match &mut *cell {
            Some(decompressor) => decompressor,
            empty => empty.insert(zstd::bulk::Decompressor::new().map_err(|error| error.to_string())?),
        };
        let data = decompressor.decompress(frame, size).map_err(|error| format!("cannot decompress: {error}"))?;
        if data.len() != size {
            return Err(format!("decompressed to {} bytes, its frame says {size}", data.len()));
        }
        Ok(Bytes::from(data))
    })
}

/// A file read with `pread`: unlike `File`'s own `ChunkReader`, whose clones share one
/// seek position, concurrent readers cannot move each other's position.
#[derive(Clone)]
struct SharedFile {
    file: Arc<File>,
    len: u64,
}

impl Length for SharedFile {
    fn len(&self) -> u64 {
        self.len
    }
}

impl ChunkReader for SharedFile {
    type T = SharedFileRead;

    fn get_read(&self, start: u64) -> parquet::errors::Result<SharedFileRead> {
        Ok(SharedFileRead { file: self.file.clone(), position: start })
    }

    fn get_bytes(&self, start: u64, length: usize) -> parquet::errors::Result<Bytes> {
        let mut buffer = vec![0; length];
        self.file.read_exact_at(&mut buffer, start)?;
        Ok(buffer.into())
    }
}

struct SharedFileRead {
    file: Arc<File>,
    position: u64,
}

impl Read for SharedFileRead {
    fn read(&mut self, buffer: &mut [u8]) -> io::Result<usize> {
        let read = self.file.read_at(buffer, self.position)?;
        self.position += read as u64;
        Ok(read)
    }
}
