//! Reading the bits of an H.264 or HEVC NAL unit payload: fixed-width
//! fields and Exp-Golomb codes, with emulation prevention bytes dropped
//! (ITU-T H.264 §7.2, §9.1; ITU-T H.265 §7.2, §9.2).

/// Why a unit was not understood.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) struct Unsupported;

/// The result of reading a syntax element or structure.
pub(crate) type Parsed<T> = Result<T, Unsupported>;

/// Reads bits MSB first from a NAL unit's payload, dropping emulation
/// prevention bytes (`00 00 03`).
pub(crate) struct Bits<'a> {
    data: &'a [u8],
    /// Next byte to load.
    pos: usize,
    /// Zero bytes just loaded (for emulation prevention).
    zeros: usize,
    /// The byte being read and how many of its bits are left.
    byte: u8,
    left: u32,
}

impl<'a> Bits<'a> {
    /// A reader over `data` (the unit without its NAL unit header).
    pub(crate) fn new(data: &'a [u8]) -> Self {
        Self {
            data,
            pos: 0,
            zeros: 0,
            byte: 0,
            left: 0,
        }
    }

    /// How many bytes of the escaped input were consumed (the byte holding
    /// the next bit included).
    pub(crate) fn consumed(&self) -> usize {
        self.pos
    }

    fn bit(&mut self) -> Parsed<u32> {
        if self.left == 0 {
            let mut b = *self.data.get(self.pos).ok_or(Unsupported)?;
            self.pos += 1;
            if self.zeros >= 2 && b == 3 {
                b = *self.data.get(self.pos).ok_or(Unsupported)?;
                self.pos += 1;
                self.zeros = 0;
            }
            self.zeros = if b == 0 { self.zeros + 1 } else { 0 };
            self.byte = b;
            self.left = 8;
        }
        self.left -= 1;
        Ok(u32::from((self.byte >> self.left) & 1))
    }

    /// `u(n)`, n ≤ 32.
    pub(crate) fn bits(&mut self, n: u32) -> Parsed<u32> {
        let mut v = 0u32;
        for _ in 0..n {
            v = (v << 1) | self.bit()?;
        }
        Ok(v)
    }

    /// `u(1)`.
    pub(crate) fn flag(&mut self) -> Parsed<bool> {
        Ok(self.bit()? == 1)
    }

    /// `ue(v)`, up to 2^32 - 2.
    pub(crate) fn ue(&mut self) -> Parsed<u32> {
        let mut zeros = 0;
        while self.bit()? == 0 {
            zeros += 1;
            if zeros > 31 {
                return Err(Unsupported);
            }
        }
        let rest = self.bits(zeros)?;
        Ok(((1u64 << zeros) - 1 + u64::from(rest)) as u32)
    }

    /// `se(v)`.
    pub(crate) fn se(&mut self) -> Parsed<i32> {
        let k = i64::from(self.ue()?);
        Ok(if k % 2 == 1 {
            ((k + 1) / 2) as i32
        } else {
            (-(k / 2)) as i32
        })
    }

    /// `ue(v)` no larger than `max`.
    pub(crate) fn ue_max(&mut self, max: u32) -> Parsed<u32> {
        let v = self.ue()?;
        if v > max {
            return Err(Unsupported);
        }
        Ok(v)
    }

    /// Skips `n` bits.
    pub(crate) fn skip(&mut self, n: u32) -> Parsed<()> {
        for _ in 0..n {
            self.bit()?;
        }
        Ok(())
    }

    /// `byte_alignment()`: a one bit, then zero bits up to the next byte.
    pub(crate) fn byte_alignment(&mut self) -> Parsed<()> {
        if !self.flag()? {
            return Err(Unsupported);
        }
        while self.left != 0 {
            if self.flag()? {
                return Err(Unsupported);
            }
        }
        Ok(())
    }
}

/// The bytes written as hexadecimal digits in `text` (unit tests' units).
#[cfg(test)]
pub(crate) fn hex(text: &str) -> Vec<u8> {
    (0..text.len())
        .step_by(2)
        .map(|i| u8::from_str_radix(&text[i..i + 2], 16).unwrap())
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_golomb_codes_and_emulation_prevention() {
        // 1 | 010 | 011 | 00100 | 00101 = ue 0, 1, 2, 3, 4; then se from
        // 010 (+1) and 011 (-1).
        let mut r = Bits::new(&[0b1010_0110, 0b0100_0010, 0b1010_0110]);
        assert_eq!(
            (r.ue(), r.ue(), r.ue(), r.ue(), r.ue()),
            (Ok(0), Ok(1), Ok(2), Ok(3), Ok(4))
        );
        assert_eq!((r.se(), r.se()), (Ok(1), Ok(-1)));
        // 00 00 03 01: the 03 is dropped, the reader sees 00 00 01.
        let mut r = Bits::new(&[0, 0, 3, 1]);
        assert_eq!(r.bits(24), Ok(1));
        assert_eq!(r.consumed(), 4);
        assert_eq!(r.bit(), Err(Unsupported));
    }
}
