//! The generic half of the crate's CSV loaders: reading a header-checked
//! [`Sheet`], locating each [`Field`] for error reports, and collecting
//! every field error of a row with [`RowCheck`].
//!
//! It knows nothing about tariffs or accounts. Each loader plugs in its own
//! error type through [`SheetError`], so `tariffs` and `accounts` report the
//! same structural problems (`bad_csv`, `unknown_column`, …) under the same
//! codes with their own file names. Problems are pushed, never returned one
//! at a time: a loader reports everything it found in one pass.

use std::collections::HashSet;
use std::str::FromStr;

use csv::StringRecord;
use rust_decimal::Decimal;

/// A problem with the shape of a CSV file, before any value is looked at.
pub(crate) enum SheetProblem {
    BadCsv(String),
    UnknownColumn(String),
    MissingColumn(&'static str),
    DuplicateColumn(String),
    BadRow { got: usize, want: usize },
}

/// A loader's located error type, as the sheet needs to build it.
pub(crate) trait SheetError {
    /// Which file of the loader the sheet is.
    type File: Copy;
    /// What is wrong, without where.
    type Kind;

    fn at(file: Self::File, line: u64, column: usize, kind: Self::Kind) -> Self;
    fn from_sheet_problem(problem: SheetProblem) -> Self::Kind;
}

/// A CSV file whose header has been checked: the position of each expected
/// column in its records (`None` for an optional column that is absent).
pub(crate) struct Sheet<F> {
    pub(crate) file: F,
    positions: Vec<Option<usize>>,
    pub(crate) rows: Vec<(u64, StringRecord)>,
}

/// A field of one row, with its location for error reports.
pub(crate) struct Field<'r> {
    pub(crate) value: &'r str,
    pub(crate) line: u64,
    pub(crate) column: usize,
}

impl<F: Copy> Sheet<F> {
    /// Field `col` (an index into the required columns, then the optional
    /// ones) of the record on `line`. An absent optional column reads as
    /// empty at column 0.
    pub(crate) fn field<'r>(&self, line: u64, rec: &'r StringRecord, col: usize) -> Field<'r> {
        match self.positions.get(col).copied().flatten() {
            Some(pos) => Field {
                value: rec.get(pos).unwrap_or(""),
                line,
                column: pos + 1,
            },
            None => Field {
                value: "",
                line,
                column: 0,
            },
        }
    }
}

/// Reads `text` as CSV with a header naming every `required` column and any
/// of the `optional` ones, in any order. Returns `None` when the file cannot
/// be read as that sheet at all (no header, a required column missing).
pub(crate) fn read_sheet<E: SheetError>(
    file: E::File,
    text: &str,
    required: &[&'static str],
    optional: &[&'static str],
    errors: &mut Vec<E>,
) -> Option<Sheet<E::File>> {
    let problem = |line, column, p| E::at(file, line, column, E::from_sheet_problem(p));
    let text = text.strip_prefix('\u{feff}').unwrap_or(text);
    let mut reader = csv::ReaderBuilder::new()
        .flexible(true)
        .trim(csv::Trim::All)
        .from_reader(text.as_bytes());
    let header = match reader.headers() {
        Ok(h) => h.clone(),
        Err(e) => {
            errors.push(problem(1, 0, SheetProblem::BadCsv(e.to_string())));
            return None;
        }
    };
    // Unknown and duplicate columns are reported but the rows are still
    // read, so their problems show up in the same pass; only a missing
    // column makes the file unreadable.
    let mut positions = vec![None; required.len() + optional.len()];
    let mut ok = true;
    let mut seen = HashSet::new();
    for (pos, name) in header.iter().enumerate() {
        if !seen.insert(name) {
            errors.push(problem(1, pos + 1, SheetProblem::DuplicateColumn(name.to_owned())));
            continue;
        }
        match required.iter().chain(optional).position(|c| *c == name) {
            Some(col) => positions[col] = Some(pos),
            None => errors.push(problem(1, pos + 1, SheetProblem::UnknownColumn(name.to_owned()))),
        }
    }
    for (name, pos) in required.iter().zip(&positions) {
        if pos.is_none() {
            errors.push(problem(1, 0, SheetProblem::MissingColumn(name)));
            ok = false;
        }
    }
    let mut rows = Vec::new();
    for rec in reader.records() {
        match rec {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| p.line());
                if rec.len() != header.len() {
                    let (got, want) = (rec.len(), header.len());
                    errors.push(problem(line, 0, SheetProblem::BadRow { got, want }));
                } else {
                    rows.push((line, rec));
                }
            }
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                errors.push(problem(line, 0, SheetProblem::BadCsv(e.to_string())));
            }
        }
    }
    ok.then_some(Sheet { file, positions, rows })
}

/// Collects field errors of one row; the row is kept only if it has none.
pub(crate) struct RowCheck<'e, E: SheetError> {
    file: E::File,
    errors: &'e mut Vec<E>,
    pub(crate) failed: bool,
}

impl<'e, E: SheetError> RowCheck<'e, E> {
    pub(crate) fn new(file: E::File, errors: &'e mut Vec<E>) -> Self {
        RowCheck {
            file,
            errors,
            failed: false,
        }
    }

    pub(crate) fn check<T>(&mut self, f: &Field, r: Result<T, E::Kind>) -> Option<T> {
        match r {
            Ok(v) => Some(v),
            Err(kind) => {
                self.errors.push(E::at(self.file, f.line, f.column, kind));
                self.failed = true;
                None
            }
        }
    }
}

/// A decimal written plainly: digits, at most one `.`, an optional leading
/// `-`. No exponent, `+` or `_` separator, whatever `Decimal::from_str`
/// might accept, so what an operator reads in the file is what is charged.
pub(crate) fn parse_plain_decimal(s: &str) -> Option<Decimal> {
    let unsigned = s.strip_prefix('-').unwrap_or(s);
    let plain = !unsigned.is_empty()
        && unsigned.bytes().all(|b| b.is_ascii_digit() || b == b'.')
        && unsigned.bytes().filter(|b| *b == b'.').count() <= 1
        && unsigned.bytes().any(|b| b.is_ascii_digit());
    if plain {
        Decimal::from_str(s).ok()
    } else {
        None
    }
}
