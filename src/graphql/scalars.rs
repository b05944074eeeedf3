//! Scalars of our own.

use async_graphql::{InputValueError, InputValueResult, Number, Scalar, ScalarType, Value};

/// Largest magnitude a [`Long`] carries exactly through JavaScript's numbers: 2^53 − 1.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A whole number beyond `Int`'s 32 bits.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Long(pub i64);

/// A whole number that can pass `Int`'s 32 bits: points, money in minor units, and counts over
/// all time. It is written as a JSON number, exact from -(2^53 - 1) to 2^53 - 1
/// (9007199254740991), so JavaScript clients read it as they read `Int`.
#[Scalar(name = "Long")]
impl ScalarType for Long {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(number) => number
                .as_i64()
                .filter(|n| n.abs() <= MAX_SAFE_INTEGER)
                .map(Long)
                .ok_or_else(|| {
                    InputValueError::custom(format!(
                        "Long takes whole numbers from -{MAX_SAFE_INTEGER} to {MAX_SAFE_INTEGER}"
                    ))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        Value::Number(Number::from(self.0))
    }
}

impl From<i64> for Long {
    fn from(value: i64) -> Self {
        Self(value)
    }
}
