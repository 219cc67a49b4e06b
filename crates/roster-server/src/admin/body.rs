//! JSON request bodies of the admin API: [`ApiJson`] (the extractor), [`from_json`] and
//! [`optional_json`]. A malformed body is a JSON 400, like every admin API error.
//!
//! Two differences from plain serde, both so that the server accepts exactly what
//! `docs/openapi.json` describes (schemathesis checks it): a number with a zero fraction
//! (`30.0`) is an integer, as JSON Schema counts it; and a struct is read only from a JSON
//! object, never from an array of its fields, which serde would otherwise accept.

use axum::extract::FromRequest;
use serde::de::DeserializeOwned;
use serde_json::Value;

use super::ApiError;

/// A JSON request body, read through [`from_json`]; a malformed one is a JSON 400.
#[derive(Debug)]
pub struct ApiJson<T>(pub T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for ApiJson<T> {
    type Rejection = ApiError;

    async fn from_request(req: axum::extract::Request, state: &S) -> Result<Self, ApiError> {
        let axum::Json(v) = axum::Json::<Value>::from_request(req, state).await?;
        from_json(v).map(Self)
    }
}

/// Reads a request body's JSON value into `T`. Numbers with a zero fraction (`30.0`) are read
/// as the integers they are: JSON Schema, and so `docs/openapi.json`, counts them as integers,
/// serde does not.
///
/// # Errors
/// 400 naming what does not fit.
pub fn from_json<T: DeserializeOwned>(mut v: Value) -> Result<T, ApiError> {
    integral_numbers(&mut v);
    T::deserialize(StructIsObject(v))
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))
}

/// Deserialises like a [`Value`], except that a struct must be a JSON object: serde also reads
/// structs from arrays of their fields in order (`["Acme"]` as `{"name": "Acme"}`), which no
/// client means and `docs/openapi.json` does not allow.
struct StructIsObject(Value);

macro_rules! forward_to_value {
    ($($method:ident),*) => {$(
        fn $method<V: serde::de::Visitor<'de>>(self, visitor: V) -> Result<V::Value, Self::Error> {
            self.0.$method(visitor)
        }
    )*};
}

impl<'de> serde::Deserializer<'de> for StructIsObject {
    type Error = serde_json::Error;

    forward_to_value!(
        deserialize_any,
        deserialize_bool,
        deserialize_i8,
        deserialize_i16,
        deserialize_i32,
        deserialize_i64,
        deserialize_i128,
        deserialize_u8,
        deserialize_u16,
        deserialize_u32,
        deserialize_u64,
        deserialize_u128,
        deserialize_f32,
        deserialize_f64,
        deserialize_char,
        deserialize_str,
        deserialize_string,
        deserialize_bytes,
        deserialize_byte_buf,
        deserialize_option,
        deserialize_unit,
        deserialize_seq,
        deserialize_map,
        deserialize_identifier,
        deserialize_ignored_any
    );

    fn deserialize_unit_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_unit_struct(name, visitor)
    }

    fn deserialize_newtype_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_newtype_struct(name, visitor)
    }

    fn deserialize_tuple<V: serde::de::Visitor<'de>>(
        self,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple(len, visitor)
    }

    fn deserialize_tuple_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        len: usize,
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_tuple_struct(name, len, visitor)
    }

    fn deserialize_struct<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        fields: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        if !self.0.is_object() {
            return Err(serde::de::Error::custom("the body must be a JSON object"));
        }
        self.0.deserialize_struct(name, fields, visitor)
    }

    fn deserialize_enum<V: serde::de::Visitor<'de>>(
        self,
        name: &'static str,
        variants: &'static [&'static str],
        visitor: V,
    ) -> Result<V::Value, Self::Error> {
        self.0.deserialize_enum(name, variants, visitor)
    }
}

/// Parses an optional JSON body (empty or whitespace = `T::default()`) like [`ApiJson`].
///
/// # Errors
/// 400 for malformed JSON or a value that does not fit `T`.
pub fn optional_json<T: DeserializeOwned + Default>(body: &[u8]) -> Result<T, ApiError> {
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(T::default());
    }
    let v: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::invalid(format!("invalid JSON body: {e}")))?;
    from_json(v)
}

/// Replaces every float with a zero fraction that fits an `i64` or `u64` by that integer.
pub fn integral_numbers(v: &mut Value) {
    match v {
        Value::Number(n) => {
            if let Some(f) = n.as_f64().filter(|f| n.is_f64() && f.fract() == 0.0) {
                // 2^63 and 2^64 are exact in f64; the casts below are in range by these checks.
                if (-9_223_372_036_854_775_808.0..9_223_372_036_854_775_808.0).contains(&f) {
                    #[allow(clippy::cast_possible_truncation)]
                    let i = f as i64;
                    *v = Value::from(i);
                } else if (0.0..18_446_744_073_709_551_616.0).contains(&f) {
                    #[allow(clippy::cast_possible_truncation, clippy::cast_sign_loss)]
                    let u = f as u64;
                    *v = Value::from(u);
                }
            }
        }
        Value::Array(a) => a.iter_mut().for_each(integral_numbers),
        Value::Object(m) => m.values_mut().for_each(integral_numbers),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn integral_floats_read_as_integers() {
        let mut v = serde_json::json!({"a": 30.0, "b": [1.5, -2.0], "c": 1e300, "d": 18446744073709551615.0});
        integral_numbers(&mut v);
        assert_eq!(v["a"], serde_json::json!(30));
        assert!(v["a"].is_u64());
        assert_eq!(v["b"], serde_json::json!([1.5, -2]));
        assert!(v["c"].is_f64(), "out of range stays a float");
        let n: u32 = from_json(serde_json::json!(7.0)).unwrap();
        assert_eq!(n, 7);
        assert!(from_json::<u32>(serde_json::json!(7.5)).is_err());
        assert_eq!(optional_json::<Option<u32>>(b"  ").unwrap(), None);
        assert!(optional_json::<u32>(b"{").is_err());
    }

    #[test]
    fn structs_come_only_from_objects() {
        #[derive(Debug, Default, serde::Deserialize, PartialEq)]
        struct S {
            a: Option<u32>,
            b: Option<String>,
        }
        assert!(from_json::<S>(serde_json::json!([1, "x"])).is_err());
        assert!(optional_json::<S>(b"[null, null]").is_err());
        assert_eq!(
            from_json::<S>(serde_json::json!({"a": 1.0})).unwrap(),
            S {
                a: Some(1),
                b: None
            }
        );
        assert_eq!(
            from_json::<Option<S>>(serde_json::json!({"b": "x"})).unwrap(),
            Some(S {
                a: None,
                b: Some("x".into())
            })
        );
        assert_eq!(
            from_json::<Vec<u8>>(serde_json::json!([1, 2])).unwrap(),
            [1, 2]
        );
        assert_eq!(
            from_json::<roster_store::DeprovisionMode>(serde_json::json!("erase")).unwrap(),
            roster_store::DeprovisionMode::Erase
        );
    }
}
