//! Provenance: which side (directory or external) each of a row's values came from, stored
//! as one integer of bits per row.

use crate::fields::FIELD_COUNT;
use crate::transform::Side;

/// The sides of a row's values as bits: bit i set when field i's value is the external one.
pub fn side_bits(sides: &[Side; FIELD_COUNT]) -> u32 {
    sides
        .iter()
        .enumerate()
        .filter(|(_, side)| **side == Side::External)
        .fold(0, |bits, (i, _)| bits | 1 << i)
}

/// The sides `bits` stands for (see [`side_bits`]).
pub fn sides_of(bits: u32) -> [Side; FIELD_COUNT] {
    std::array::from_fn(|i| {
        if bits & (1 << i) != 0 {
            Side::External
        } else {
            Side::Directory
        }
    })
}
