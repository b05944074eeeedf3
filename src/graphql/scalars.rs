//! Scalars of our own.

use async_graphql::{InputValueError, InputValueResult, Number, Scalar, ScalarType, Value};

/// Largest magnitude a [`Long`] carries exactly through JavaScript's numbers: 2^53 − 1.
pub const MAX_SAFE_INTEGER: i64 = (1 << 53) - 1;

/// A whole number beyond `Int`'s 32 bits; 128 bits wide, so sums and products of money never
/// overflow.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Long(pub i128);

/// A whole number that can pass `Int`'s 32 bits: points, money in minor units, and counts over
/// all time. From -(2^53 - 1) to 2^53 - 1 (9007199254740991) it is written as a JSON number, so
/// JavaScript clients read it exactly, as they read `Int`; beyond that (a program's liability at
/// an extreme point value, say) it is written as a JSON string of its decimal digits, such as
/// "30000000000000000000000", which no client rounds. As input it takes a number within
/// ±(2^53 - 1).
#[Scalar(name = "Long")]
impl ScalarType for Long {
    fn parse(value: Value) -> InputValueResult<Self> {
        match &value {
            Value::Number(number) => number
                .as_i64()
                .filter(|n| n.unsigned_abs() <= MAX_SAFE_INTEGER.unsigned_abs())
                .map(Long::from)
                .ok_or_else(|| {
                    InputValueError::custom(format!(
                        "Long takes whole numbers from -{MAX_SAFE_INTEGER} to {MAX_SAFE_INTEGER}"
                    ))
                }),
            _ => Err(InputValueError::expected_type(value)),
        }
    }

    fn to_value(&self) -> Value {
        match i64::try_from(self.0) {
            Ok(exact) if exact.unsigned_abs() <= MAX_SAFE_INTEGER.unsigned_abs() => {
                Value::Number(Number::from(exact))
            }
            _ => Value::String(self.0.to_string()),
        }
    }
}

impl From<i64> for Long {
    fn from(value: i64) -> Self {
        Self(i128::from(value))
    }
}

impl From<i128> for Long {
    fn from(value: i128) -> Self {
        Self(value)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_long_past_two_to_the_53_is_written_as_a_string_and_below_as_a_number() {
        assert_eq!(
            Long::from(MAX_SAFE_INTEGER).to_value(),
            Value::Number(Number::from(MAX_SAFE_INTEGER))
        );
        assert_eq!(
            Long::from(-MAX_SAFE_INTEGER).to_value(),
            Value::Number(Number::from(-MAX_SAFE_INTEGER))
        );
        assert_eq!(
            Long::from(MAX_SAFE_INTEGER + 1).to_value(),
            Value::String("9007199254740992".into())
        );
        assert_eq!(
            Long::from(30_000_000_000_000_i128 * 1_000_000_000).to_value(),
            Value::String("30000000000000000000000".into())
        );
        assert_eq!(
            Long::from(i64::MIN).to_value(),
            Value::String("-9223372036854775808".into())
        );
    }
}
