//! Decoding PDF streams through a budget, before lopdf or pdf-extract decode them without one.
//!
//! lopdf calls a [`LoadOptions`](lopdf::LoadOptions) filter for every object it loads, before
//! it unpacks object streams. [`check_stream`] decodes each stream's filter chain (FlateDecode,
//! LZWDecode, ASCIIHexDecode, ASCII85Decode, in order, up to the first filter lopdf cannot decode
//! either) into buffers that may never grow past what is left of the budget, and throws the
//! result away: it only proves that decoding the stream for real stays within the budget.
//! Images are skipped (text extraction never decodes them). The filter is a plain `fn`, so the
//! budget lives in a thread-local set up by [`Budget::start`]; lopdf is built without its
//! parallel loader, so the filter runs on the calling thread.

use std::cell::Cell;
use std::io::{Read, Write};

use lopdf::{Object, ObjectId, Stream};

thread_local! {
    /// Bytes that may still be decoded, or `None` when no [`Budget`] is running.
    static LEFT: Cell<Option<u64>> = const { Cell::new(None) };
    /// Bytes decoded so far.
    static USED: Cell<u64> = const { Cell::new(0) };
    /// Set when a stream would decode past the budget.
    static OVER: Cell<bool> = const { Cell::new(false) };
}

/// The budget for loading one PDF on this thread.
pub(super) struct Budget(());

impl Budget {
    /// Starts counting against `bytes`.
    pub(super) fn start(bytes: u64) -> Budget {
        LEFT.set(Some(bytes));
        USED.set(0);
        OVER.set(false);
        Budget(())
    }

    /// The bytes decoded while loading, or `Err` when a stream would have gone past the budget.
    pub(super) fn finish(self) -> Result<u64, ()> {
        let over = OVER.get();
        let used = USED.get();
        LEFT.set(None);
        if over { Err(()) } else { Ok(used) }
    }
}

impl Drop for Budget {
    fn drop(&mut self) {
        LEFT.set(None);
    }
}

/// The lopdf load filter: keeps every object, after checking that a stream decodes within the
/// budget. A stream over the budget is dropped and marks the load as failed.
///
/// lopdf uses the returned object only for objects inside object streams, which are never
/// streams themselves (PDF 32000-1 §7.5.7); for a stream it keeps the object it passed in, so no
/// copy of the stream is made here.
pub(super) fn check_stream(id: ObjectId, object: &mut Object) -> Option<(ObjectId, Object)> {
    let Object::Stream(stream) = object else {
        return Some((id, object.clone()));
    };
    let Some(left) = LEFT.get() else {
        return Some((id, Object::Null));
    };
    if OVER.get() {
        return None;
    }
    if is_image(stream) {
        return Some((id, Object::Null));
    }
    match decoded_size(stream, left) {
        Some(n) => {
            LEFT.set(Some(left - n));
            USED.set(USED.get() + n);
            Some((id, Object::Null))
        }
        None => {
            tracing::debug!(object = ?id, "a PDF stream decodes past the unpacked-size budget");
            OVER.set(true);
            None
        }
    }
}

fn is_image(stream: &Stream) -> bool {
    stream.dict.get(b"Subtype").and_then(Object::as_name).is_ok_and(|s| s == b"Image")
}

/// The bytes decoding `stream` materialises (every step of its filter chain counted), or `None`
/// when that is more than `budget`.
fn decoded_size(stream: &Stream, budget: u64) -> Option<u64> {
    let Ok(filters) = stream.filters() else {
        return Some(0);
    };
    let early_change = stream
        .dict
        .get(b"DecodeParms")
        .and_then(Object::as_dict)
        .and_then(|p| p.get(b"EarlyChange"))
        .and_then(Object::as_i64)
        .map_or(true, |v| v != 0);
    let mut data: Vec<u8>;
    let mut input: &[u8] = &stream.content;
    let mut used = 0u64;
    for (n, filter) in filters.iter().enumerate() {
        let left = budget.checked_sub(used)?;
        // The last step's output is only counted, never kept.
        if n + 1 == filters.len() && matches!(*filter, b"FlateDecode" | b"Fl") {
            return used.checked_add(inflated_size(input, left)?);
        }
        let output = match *filter {
            b"FlateDecode" | b"Fl" => inflate(input, left)?,
            b"LZWDecode" | b"LZW" => lzw(input, left, early_change)?,
            b"ASCIIHexDecode" | b"AHx" => ascii_hex(input),
            b"ASCII85Decode" | b"A85" => ascii85(input),
            // lopdf stops with an error at any other filter, so nothing past it is decoded.
            _ => break,
        };
        used = used.checked_add(output.len() as u64).filter(|&u| u <= budget)?;
        data = output;
        input = &data;
    }
    Some(used)
}

/// The size [`inflate`] would produce, at most `limit`, without keeping it.
fn inflated_size(input: &[u8], limit: u64) -> Option<u64> {
    let mut sink = std::io::sink();
    let mut count = |reader: &mut dyn Read| std::io::copy(&mut reader.take(limit.saturating_add(1)), &mut sink);
    let mut zlib = flate2::read::ZlibDecoder::new(input);
    let size = match count(&mut zlib) {
        Ok(n) => n,
        Err(_) if zlib.total_out() == 0 && input.len() > 2 => {
            count(&mut flate2::read::DeflateDecoder::new(&input[2..])).unwrap_or(0)
        }
        Err(_) => zlib.total_out(),
    };
    (size <= limit).then_some(size)
}

/// zlib, or raw deflate when the zlib wrapper is broken (as lopdf falls back to), at most
/// `limit` bytes.
fn inflate(input: &[u8], limit: u64) -> Option<Vec<u8>> {
    let mut out = Vec::new();
    let zlib = flate2::read::ZlibDecoder::new(input).take(limit.saturating_add(1)).read_to_end(&mut out);
    if zlib.is_err() && out.is_empty() && input.len() > 2 {
        out.clear();
        let _ = flate2::read::DeflateDecoder::new(&input[2..]).take(limit.saturating_add(1)).read_to_end(&mut out);
    }
    (out.len() as u64 <= limit).then_some(out)
}

/// LZW as PDF writes it (MSB first, 8-bit literals), at most `limit` bytes.
fn lzw(input: &[u8], limit: u64, early_change: bool) -> Option<Vec<u8>> {
    use weezl::{BitOrder, decode::Decoder};
    let mut decoder =
        if early_change { Decoder::with_tiff_size_switch(BitOrder::Msb, 8) } else { Decoder::new(BitOrder::Msb, 8) };
    let mut out = Capped { buf: Vec::new(), limit, over: false };
    // A damaged stream ends the output early, as lopdf does; only going over the limit counts.
    let _ = decoder.into_stream(&mut out).decode_all(input);
    (!out.over).then_some(out.buf)
}

/// A writer that refuses to grow past `limit` bytes.
struct Capped {
    buf: Vec<u8>,
    limit: u64,
    /// Set once a write would have gone past `limit`.
    over: bool,
}

impl Write for Capped {
    fn write(&mut self, data: &[u8]) -> std::io::Result<usize> {
        if (self.buf.len() + data.len()) as u64 > self.limit {
            self.over = true;
            return Err(std::io::Error::other("over the unpacked-size budget"));
        }
        self.buf.extend_from_slice(data);
        Ok(data.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// ASCIIHexDecode: two hex digits per byte, whitespace ignored, `>` ends the data.
fn ascii_hex(input: &[u8]) -> Vec<u8> {
    let digits = input.iter().take_while(|&&b| b != b'>').filter_map(|&b| (b as char).to_digit(16));
    let digits: Vec<u8> = digits.map(|d| d as u8).collect();
    digits.chunks(2).map(|pair| pair[0] << 4 | pair.get(1).copied().unwrap_or(0)).collect()
}

/// ASCII85Decode: five characters per four bytes, `z` for four zero bytes, `~>` ends the data.
/// At most four bytes per input byte, so its output is bounded by the input's size.
fn ascii85(input: &[u8]) -> Vec<u8> {
    let mut out = Vec::with_capacity(input.len());
    let mut group = [0u8; 5];
    let mut n = 0;
    for &c in input {
        match c {
            b'~' => break,
            b'z' if n == 0 => out.extend_from_slice(&[0; 4]),
            b'!'..=b'u' => {
                group[n] = c - b'!';
                n += 1;
                if n == 5 {
                    let value = group.iter().fold(0u32, |acc, &d| acc.wrapping_mul(85).wrapping_add(u32::from(d)));
                    out.extend_from_slice(&value.to_be_bytes());
                    n = 0;
                }
            }
            _ => {}
        }
    }
    if n > 1 {
        for slot in group.iter_mut().skip(n) {
            *slot = 84;
        }
        let value = group.iter().fold(0u32, |acc, &d| acc.wrapping_mul(85).wrapping_add(u32::from(d)));
        out.extend_from_slice(&value.to_be_bytes()[..n - 1]);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use lopdf::dictionary;

    fn flate_twice() -> Object {
        Object::Array(vec![Object::Name(b"FlateDecode".to_vec()), Object::Name(b"FlateDecode".to_vec())])
    }

    fn deflate(data: &[u8]) -> Vec<u8> {
        let mut encoder = flate2::write::ZlibEncoder::new(Vec::new(), flate2::Compression::best());
        encoder.write_all(data).unwrap();
        encoder.finish().unwrap()
    }

    #[test]
    fn chained_flate_is_counted_and_stopped_at_the_budget() {
        let inner = deflate(&vec![b'a'; 1 << 20]);
        let outer = deflate(&inner);
        let stream = Stream::new(dictionary! { "Filter" => flate_twice() }, outer);
        let size = decoded_size(&stream, 4 << 20).unwrap();
        assert_eq!(size, (1 << 20) + inner.len() as u64);
        assert_eq!(decoded_size(&stream, 1 << 19), None);
    }

    #[test]
    fn the_load_filter_drops_a_bomb_and_reports_it() {
        let bomb = deflate(&deflate(&vec![0u8; 8 << 20]));
        let mut object = Object::Stream(Stream::new(dictionary! { "Filter" => flate_twice() }, bomb));
        let budget = Budget::start(1 << 20);
        assert!(check_stream((1, 0), &mut object).is_none());
        assert_eq!(budget.finish(), Err(()));

        let mut image = object.clone();
        image.as_stream_mut().unwrap().dict.set("Subtype", "Image");
        let budget = Budget::start(1 << 20);
        assert!(check_stream((1, 0), &mut image).is_some());
        assert_eq!(budget.finish(), Ok(0));
    }

    #[test]
    fn text_encodings_decode() {
        assert_eq!(ascii_hex(b"48 65 6C6C 6f>ignored"), b"Hello");
        assert_eq!(ascii85(b"87cURD]i,\"Ebo80~>"), b"Hello World!");
        assert_eq!(ascii85(b"z~>"), [0; 4]);
        let mut encoded = Vec::new();
        weezl::encode::Encoder::with_tiff_size_switch(weezl::BitOrder::Msb, 8)
            .into_stream(&mut encoded)
            .encode_all(&b"abababababababab"[..])
            .status
            .unwrap();
        assert_eq!(lzw(&encoded, 100, true).unwrap(), b"abababababababab");
        assert_eq!(lzw(&encoded, 4, true), None);
    }
}
