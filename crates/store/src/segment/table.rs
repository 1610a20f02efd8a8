//! The Parquet file of a sealed segment: its columns, how they are laid out on disk, and
//! reading single rows back by page.
//!
//! Only `event_json` and `event_id` are ever read back by Trailkeeper (the lookup index
//! answers everything else); the other columns are there for SQL engines. Reads go through
//! `pread` on a shared file handle, so any number of threads can read one segment at once,
//! and use the cached offset index so that only the data pages holding the asked rows are
//! read and decompressed.

use std::fs::File;
use std::io::{self, Read};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};
use std::sync::Arc;

use arrow_array::builder::{BooleanBuilder, StringBuilder};
use arrow_array::{ArrayRef, Int64Array, RecordBatch, StringArray, TimestampMicrosecondArray};
use arrow_schema::{DataType, Field, Schema, SchemaRef, TimeUnit};
use bytes::Bytes;
use parquet::arrow::ArrowWriter;
use parquet::arrow::ProjectionMask;
use parquet::arrow::arrow_reader::{
    ArrowReaderMetadata, ArrowReaderOptions, ParquetRecordBatchReaderBuilder, RowSelection, RowSelectionPolicy,
    RowSelector,
};
use parquet::basic::{Compression, Encoding, ZstdLevel};
use parquet::errors::ParquetError;
use parquet::file::metadata::{PageIndexPolicy, SortingColumn};
use parquet::file::properties::{EnabledStatistics, WriterProperties};
use parquet::file::reader::{ChunkReader, Length};
use parquet::schema::types::ColumnPath;
use trailkeeper_core::Category;

use super::cache::{Page, PageCache};
use crate::{StoreError, StoredEvent};

const EVENT_ID: &str = "event_id";
const EVENT_JSON: &str = "event_json";
const EVENT_ID_PAGE_BYTES: usize = 8 << 10;

/// Arrow batches are cut at this many rows or JSON bytes, whichever comes first, to bound
/// the writer's memory and keep string offsets within i32 (256 KB records allowed).
const BATCH_ROWS: usize = 8192;
const BATCH_JSON_BYTES: usize = 64 << 20;

/// The knobs that trade disk size against point-read cost.
///
/// Measured with an earlier home-made generator (since removed) on 200,000 management
/// events of 1,495 B of JSON on average, 2 cores, release build. Measure layouts now with
/// `crates/bench/examples/segment_layout.rs` on the realistic generator: this layout gives
/// 258 B/event of Parquet plus 10 B of `.idx` there (1,541 B of JSON per event).
/// Parquet bytes per event (the `.idx` adds 7.9), and `read_json` latency p50 / p99 for one
/// random row and for 50 rows scattered through the segment:
///
/// | JSON page | zstd | Parquet B/event | 1 row µs | 50 rows ms | write events/s |
/// |---|---|---|---|---|---|
/// | 64 KiB  | 3 | 229.7 | 54 / 86   | 1.5 / 1.6 | 154,000 |
/// | 128 KiB | 3 | 211.5 | 75 / 122  | 2.7 / 6.9 | 172,000 |
/// | 256 KiB | 3 | 191.1 | 107 / 154 | 4.4 / 8.6 | 177,000 |
/// | 128 KiB | 6 | 194.8 | 65 / 99   | 2.2 / 5.5 | 86,000  |
/// | 1 MiB   | 3 | 172.4 | 319 / 373 | 12.7 / 21.8 | 160,000 (100,000 events) |
///
/// `event_json` is 87% of the file and zstd restarts on every page, so the page size is
/// the knob. 128 KiB at level 3 is chosen: it is the largest page at which even the worst
/// case (50 rows on 50 different pages, 2.7 ms of one core) leaves LookupEvents' 500
/// requests/s on 2 cores inside the CPU budget, and level 3 seals faster than the 150,000
/// events/s ingest milestone on one core, which level 6 does not. The row group size
/// (128Ki or 1Mi rows) changed neither figure; 128Ki rows gives SQL engines parallelism.
/// For scale: the same JSON as one zstd stream is 132 B/event at level 3 and 107 B/event
/// at level 19, so these events cannot meet 150 B/event in any page-addressable layout
/// that also carries an `event_id` column (20.8 B/event of random UUIDs).
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
        TableLayout { json_page_bytes: 128 << 10, row_group_rows: 128 << 10, zstd_level: 3 };

    /// How many rows the writer hands a column at a time; page size limits are checked
    /// only between these, so it must be small against a JSON page.
    fn write_batch_rows(&self) -> usize {
        (self.json_page_bytes / 4096).clamp(4, 1024)
    }
}

fn schema() -> SchemaRef {
    let timestamp = DataType::Timestamp(TimeUnit::Microsecond, Some("UTC".into()));
    // No column may be named account, region or date: those are the Hive partition keys.
    Arc::new(Schema::new(vec![
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
        Field::new("ingest_time", timestamp, false),
        Field::new("seq", DataType::Int64, false),
        Field::new(EVENT_JSON, DataType::Utf8, false),
    ]))
}

fn writer_properties(layout: &TableLayout) -> Result<WriterProperties, ParquetError> {
    let column = |name: &str| ColumnPath::from(name);
    let mut builder = WriterProperties::builder()
        .set_compression(Compression::ZSTD(ZstdLevel::try_new(layout.zstd_level)?))
        .set_max_row_group_row_count(Some(layout.row_group_rows.max(1)))
        .set_write_batch_size(layout.write_batch_rows())
        // Readers find pages through the offset index; min/max per page of long strings
        // would only grow the footer every reader loads.
        .set_column_statistics_enabled(column(EVENT_JSON), EnabledStatistics::None)
        .set_column_statistics_enabled(column(EVENT_ID), EnabledStatistics::None)
        .set_column_dictionary_enabled(column(EVENT_JSON), false)
        .set_column_dictionary_enabled(column(EVENT_ID), false)
        .set_column_data_page_size_limit(column(EVENT_JSON), layout.json_page_bytes)
        // Verifying an eventID hash hit decompresses one page; random IDs compress no
        // better in large pages, so keep them small.
        .set_column_data_page_size_limit(column(EVENT_ID), EVENT_ID_PAGE_BYTES)
        .set_sorting_columns(Some(vec![
            SortingColumn { column_idx: 0, descending: false, nulls_first: false },
            SortingColumn { column_idx: 11, descending: false, nulls_first: false },
        ]));
    // Times and seqs are (nearly) sorted: deltas pack them in a byte or two.
    for name in ["event_time", "ingest_time", "seq"] {
        builder = builder
            .set_column_dictionary_enabled(column(name), false)
            .set_column_encoding(column(name), Encoding::DELTA_BINARY_PACKED);
    }
    Ok(builder.build())
}

/// Writes `events` (sorted by event key) to a new Parquet file at `path` and fsyncs it.
pub(super) fn write(path: &Path, events: &[&StoredEvent], layout: &TableLayout) -> Result<(), StoreError> {
    let parquet_error =
        |error: ParquetError| StoreError::Parquet { path: path.to_path_buf(), detail: error.to_string() };
    let schema = schema();
    let file = File::create(path).map_err(StoreError::io(path))?;
    let properties = writer_properties(layout).map_err(parquet_error)?;
    let mut writer = ArrowWriter::try_new(file, schema.clone(), Some(properties)).map_err(parquet_error)?;
    let mut start = 0;
    while start < events.len() {
        let mut end = start;
        let mut json_bytes = 0;
        while end < events.len() && end - start < BATCH_ROWS && (end == start || json_bytes < BATCH_JSON_BYTES) {
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

fn record_batch(schema: &SchemaRef, events: &[&StoredEvent]) -> Result<RecordBatch, String> {
    let strings = |value: fn(&StoredEvent) -> Option<&str>| -> ArrayRef {
        Arc::new(events.iter().map(|event| value(event)).collect::<StringArray>())
    };
    let mut json = StringBuilder::with_capacity(events.len(), events.iter().map(|event| event.json.len()).sum());
    for event in events {
        let text = std::str::from_utf8(&event.json)
            .map_err(|_| format!("the JSON of event {} is not UTF-8", event.event_id))?;
        json.append_value(text);
    }
    let mut read_only = BooleanBuilder::with_capacity(events.len());
    for event in events {
        read_only.append_option(event.fields.read_only);
    }
    let columns: Vec<ArrayRef> = vec![
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                events.iter().map(|event| event.event_time_ms.saturating_mul(1000)),
            )
            .with_timezone("UTC"),
        ),
        strings(|event| Some(event.event_id.as_str())),
        strings(|event| Some(event.fields.event_source.as_str())),
        strings(|event| Some(event.fields.event_name.as_str())),
        strings(|event| Some(event.region.as_str())),
        strings(|event| Some(event.account_id.as_str())),
        strings(|event| Some(category_name(event.category))),
        Arc::new(read_only.finish()),
        strings(|event| event.fields.username.as_deref()),
        strings(|event| event.fields.access_key_id.as_deref()),
        Arc::new(
            TimestampMicrosecondArray::from_iter_values(
                events.iter().map(|event| event.ingest_time_ms.saturating_mul(1000)),
            )
            .with_timezone("UTC"),
        ),
        Arc::new(Int64Array::from_iter_values(events.iter().map(|event| event.seq as i64))),
        Arc::new(json.finish()),
    ];
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
/// and returns the number of rows read.
pub(super) fn read_all_rows(path: &Path, mut visit: impl FnMut(super::RawRow<'_>)) -> Result<u64, StoreError> {
    let parquet_error = |detail: String| StoreError::Parquet { path: path.to_path_buf(), detail };
    let file = File::open(path).map_err(StoreError::io(path))?;
    let builder = ParquetRecordBatchReaderBuilder::try_new(file).map_err(|error| parquet_error(error.to_string()))?;
    let schema = builder.parquet_schema();
    let mut leaves = Vec::new();
    for name in ["seq", EVENT_ID, EVENT_JSON] {
        let leaf = schema
            .columns()
            .iter()
            .position(|column| column.name() == name)
            .ok_or_else(|| parquet_error(format!("no {name} column")))?;
        leaves.push(leaf);
    }
    let projection = ProjectionMask::leaves(schema, leaves);
    let reader = builder
        .with_projection(projection)
        .with_batch_size(4096)
        .build()
        .map_err(|error| parquet_error(error.to_string()))?;
    let mut rows = 0u64;
    for batch in reader {
        let batch = batch.map_err(|error| parquet_error(error.to_string()))?;
        let column = |name: &str| {
            batch.column_by_name(name).ok_or_else(|| parquet_error(format!("no {name} column in a batch")))
        };
        let seqs = column("seq")?
            .as_any()
            .downcast_ref::<Int64Array>()
            .ok_or_else(|| parquet_error("seq is not a 64-bit integer column".to_owned()))?;
        let strings = |name: &str| -> Result<&StringArray, StoreError> {
            column(name)?
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| parquet_error(format!("{name} is not text")))
        };
        let (event_ids, jsons) = (strings(EVENT_ID)?, strings(EVENT_JSON)?);
        for row in 0..batch.num_rows() {
            visit(super::RawRow { seq: seqs.value(row), event_id: event_ids.value(row), event_json: jsons.value(row) });
        }
        rows += batch.num_rows() as u64;
    }
    Ok(rows)
}

/// An open segment Parquet file with its footer and offset index cached.
pub(super) struct EventTable {
    path: PathBuf,
    file: SharedFile,
    metadata: ArrowReaderMetadata,
    /// The first row of each row group, then the row count.
    row_group_starts: Vec<u64>,
    event_id_leaf: usize,
    event_json_leaf: usize,
    /// The first row of each `event_json` page, in file row numbers, then the row count.
    json_page_starts: Vec<u64>,
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
        let leaf = |name: &str| {
            metadata
                .parquet_schema()
                .columns()
                .iter()
                .position(|column| column.name() == name)
                .ok_or_else(|| parquet_error(format!("no {name} column")))
        };
        let (event_id_leaf, event_json_leaf) = (leaf(EVENT_ID)?, leaf(EVENT_JSON)?);
        let mut row_group_starts = vec![0u64];
        for row_group in metadata.metadata().row_groups() {
            let rows = u64::try_from(row_group.num_rows()).map_err(|_| parquet_error("negative row count".into()))?;
            row_group_starts.push(row_group_starts[row_group_starts.len() - 1] + rows);
        }
        let offset_index = metadata.metadata().offset_index().ok_or_else(|| parquet_error("no offset index".into()))?;
        let mut json_page_starts = Vec::new();
        for (group, columns) in offset_index.iter().enumerate() {
            let column =
                columns.get(event_json_leaf).ok_or_else(|| parquet_error("no offset index for event_json".into()))?;
            for location in column.page_locations() {
                let first =
                    u64::try_from(location.first_row_index).map_err(|_| parquet_error("negative page row".into()))?;
                json_page_starts.push(row_group_starts[group] + first);
            }
        }
        json_page_starts.push(row_group_starts[row_group_starts.len() - 1]);
        if !json_page_starts.is_sorted() {
            return Err(parquet_error("event_json pages are out of order".into()));
        }
        Ok(EventTable {
            path: path.to_path_buf(),
            file,
            metadata,
            row_group_starts,
            event_id_leaf,
            event_json_leaf,
            json_page_starts,
        })
    }

    pub(super) fn num_rows(&self) -> u64 {
        self.row_group_starts.last().copied().unwrap_or(0)
    }

    pub(super) fn file_bytes(&self) -> u64 {
        self.file.len
    }

    /// The stored eventIDs of `rows`, in ascending row order.
    pub(super) fn read_event_ids(&self, rows: &[u32]) -> Result<Vec<Bytes>, StoreError> {
        let mut sorted = rows.to_vec();
        sorted.sort_unstable();
        sorted.dedup();
        self.read_sorted(self.event_id_leaf, &sorted)
    }

    /// The `event_json` of `rows`, in the order asked (repeats allowed). Whole pages are
    /// decoded and kept in `cache` under `segment_id`; pages already there cost nothing.
    pub(super) fn read_json(&self, rows: &[u32], cache: &PageCache, segment_id: u64) -> Result<Vec<Bytes>, StoreError> {
        let page_of =
            |row: u32| self.json_page_starts.partition_point(|&start| start <= u64::from(row)).saturating_sub(1);
        let mut pages: Vec<usize> = rows.iter().map(|&row| page_of(row)).collect();
        pages.sort_unstable();
        pages.dedup();
        let mut decoded: Vec<(usize, Page)> = Vec::with_capacity(pages.len());
        let mut missing = Vec::new();
        for page in pages {
            match cache.get((segment_id, page as u32)) {
                Some(hit) => decoded.push((page, hit)),
                None => missing.push(page),
            }
        }
        if !missing.is_empty() {
            let mut wanted = Vec::new();
            for &page in &missing {
                let (start, end) = (self.json_page_starts[page], self.json_page_starts[page + 1]);
                wanted.extend((start..end).map(|row| row as u32));
            }
            let mut values = self.read_sorted(self.event_json_leaf, &wanted)?.into_iter();
            for page in missing {
                let len = (self.json_page_starts[page + 1] - self.json_page_starts[page]) as usize;
                let rows: Page = values.by_ref().take(len).collect();
                cache.insert((segment_id, page as u32), Arc::clone(&rows));
                decoded.push((page, rows));
            }
            decoded.sort_unstable_by_key(|(page, _)| *page);
        }
        rows.iter()
            .map(|&row| {
                let page = page_of(row);
                let offset = (u64::from(row) - self.json_page_starts[page]) as usize;
                decoded
                    .binary_search_by_key(&page, |(number, _)| *number)
                    .ok()
                    .and_then(|at| decoded[at].1.get(offset).cloned())
                    .ok_or_else(|| StoreError::Parquet {
                        path: self.path.clone(),
                        detail: format!("row {row} was not read back"),
                    })
            })
            .collect()
    }

    /// Reads one string column at `rows` (sorted, unique, in range), touching only the
    /// row groups and pages that hold them.
    fn read_sorted(&self, leaf: usize, rows: &[u32]) -> Result<Vec<Bytes>, StoreError> {
        if rows.is_empty() {
            return Ok(Vec::new());
        }
        let parquet_error = |detail: String| StoreError::Parquet { path: self.path.clone(), detail };
        let mut row_groups = Vec::new();
        let mut selectors = Vec::new();
        let mut next = 0;
        while next < rows.len() {
            let row = u64::from(rows[next]);
            let group = self.row_group_starts.partition_point(|&start| start <= row).saturating_sub(1);
            let (start, end) = match (self.row_group_starts.get(group), self.row_group_starts.get(group + 1)) {
                (Some(&start), Some(&end)) if row < end => (start, end),
                _ => return Err(parquet_error(format!("row {row} is past the file's end"))),
            };
            let mut cursor = start;
            while let Some(row) = rows.get(next).map(|&row| u64::from(row)) {
                if row >= end {
                    break;
                }
                if row > cursor {
                    selectors.push(RowSelector::skip((row - cursor) as usize));
                }
                selectors.push(RowSelector::select(1));
                cursor = row + 1;
                next += 1;
            }
            if end > cursor {
                selectors.push(RowSelector::skip((end - cursor) as usize));
            }
            row_groups.push(group);
        }
        let projection = ProjectionMask::leaves(self.metadata.parquet_schema(), [leaf]);
        let reader = ParquetRecordBatchReaderBuilder::new_with_metadata(self.file.clone(), self.metadata.clone())
            .with_projection(projection)
            .with_row_groups(row_groups)
            .with_row_selection(RowSelection::from(selectors))
            .with_row_selection_policy(RowSelectionPolicy::Selectors)
            .with_batch_size(rows.len())
            .build()
            .map_err(|error| parquet_error(error.to_string()))?;
        let mut values = Vec::with_capacity(rows.len());
        for batch in reader {
            let batch = batch.map_err(|error| parquet_error(error.to_string()))?;
            let strings = batch
                .column(0)
                .as_any()
                .downcast_ref::<StringArray>()
                .ok_or_else(|| parquet_error("column is not UTF-8 text".to_owned()))?;
            values.extend(strings.iter().map(|value| Bytes::copy_from_slice(value.unwrap_or_default().as_bytes())));
        }
        if values.len() != rows.len() {
            return Err(parquet_error(format!("read {} rows, expected {}", values.len(), rows.len())));
        }
        Ok(values)
    }
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
