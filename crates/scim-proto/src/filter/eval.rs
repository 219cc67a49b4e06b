//! In-memory evaluation of a resolved filter against a resource document (or, for a value
//! filter, one element of a complex attribute). The rules are in the module documentation of
//! `filter`; the store's SQL translation implements the same ones.

use std::cmp::Ordering;

use serde_json::{Number, Value};

use super::validate::{Node, Operand, Target};
use super::{fold_case, is_present, member as get, parse_datetime, CompareOp};

pub(super) fn eval(node: &Node, ctx: &Value) -> bool {
    match node {
        Node::Present(t) => values(t, ctx).into_iter().any(is_present),
        Node::Compare(t, op, operand) => {
            values(t, ctx).into_iter().any(|v| compare(v, *op, operand))
        }
        Node::ValuePath(t, inner) => elements(t, ctx).into_iter().any(|e| eval(inner, e)),
        Node::Not(inner) => !eval(inner, ctx),
        Node::And(..) | Node::Or(..) => {
            // Left-deep chains are walked in a loop, so recursion depth follows the nesting of
            // parentheses rather than the number of terms.
            let mut rights = Vec::new();
            let mut cur = node;
            while let Node::And(l, r) | Node::Or(l, r) = cur {
                rights.push((matches!(cur, Node::And(..)), &**r));
                cur = l;
            }
            let mut acc = eval(cur, ctx);
            for (is_and, r) in rights.into_iter().rev() {
                // Short-circuit exactly like `&&` / `||`.
                if acc != is_and {
                    continue;
                }
                acc = eval(r, ctx);
            }
            acc
        }
    }
}

/// The values of a multi-valued attribute are its array's elements; a single value is itself.
fn push_flat<'v>(v: &'v Value, out: &mut Vec<&'v Value>) {
    match v {
        Value::Array(items) => out.extend(items),
        other => out.push(other),
    }
}

/// The attribute's top-level value (`doc[ext]?[attr]`).
fn top<'v>(t: &Target, ctx: &'v Value) -> Option<&'v Value> {
    let base = match t.ext {
        Some(urn) => get(ctx, urn)?,
        None => ctx,
    };
    get(base, t.attr)
}

/// Every value the target addresses: for `emails.value`, the `value` of each element.
fn values<'v>(t: &Target, ctx: &'v Value) -> Vec<&'v Value> {
    let mut out = Vec::new();
    let Some(top) = top(t, ctx) else {
        return out;
    };
    match t.sub {
        None => push_flat(top, &mut out),
        Some(sub) => {
            let mut parents = Vec::new();
            push_flat(top, &mut parents);
            for p in parents {
                if let Some(v) = get(p, sub) {
                    push_flat(v, &mut out);
                }
            }
        }
    }
    out
}

/// The element objects of a complex attribute (one for a single-valued one).
fn elements<'v>(t: &Target, ctx: &'v Value) -> Vec<&'v Value> {
    let mut out = Vec::new();
    if let Some(top) = top(t, ctx) {
        push_flat(top, &mut out);
    }
    out.retain(|v| v.is_object());
    out
}

fn ordered(op: CompareOp, ord: Ordering) -> bool {
    match op {
        CompareOp::Eq => ord == Ordering::Equal,
        CompareOp::Ne => ord != Ordering::Equal,
        CompareOp::Gt => ord == Ordering::Greater,
        CompareOp::Ge => ord != Ordering::Less,
        CompareOp::Lt => ord == Ordering::Less,
        CompareOp::Le => ord != Ordering::Greater,
        CompareOp::Co | CompareOp::Sw | CompareOp::Ew => false,
    }
}

fn as_i128(n: &Number) -> Option<i128> {
    n.as_i64()
        .map(i128::from)
        .or_else(|| n.as_u64().map(i128::from))
}

fn cmp_numbers(a: &Number, b: &Number) -> Option<Ordering> {
    match (as_i128(a), as_i128(b)) {
        (Some(x), Some(y)) => Some(x.cmp(&y)),
        _ => a.as_f64()?.partial_cmp(&b.as_f64()?),
    }
}

/// Compares one stored value with the operand; a stored value of the wrong JSON type never
/// matches.
fn compare(v: &Value, op: CompareOp, operand: &Operand) -> bool {
    match (operand, v) {
        (Operand::Str { value, case_exact }, Value::String(s)) => {
            let folded;
            let s = if *case_exact {
                s.as_str()
            } else {
                folded = fold_case(s);
                folded.as_str()
            };
            match op {
                CompareOp::Co => s.contains(value.as_str()),
                CompareOp::Sw => s.starts_with(value.as_str()),
                CompareOp::Ew => s.ends_with(value.as_str()),
                _ => ordered(op, s.cmp(value.as_str())),
            }
        }
        (Operand::Bool(b), Value::Bool(x)) => matches!(op, CompareOp::Eq) && x == b,
        (Operand::Num(n), Value::Number(x)) => {
            cmp_numbers(x, n).is_some_and(|ord| ordered(op, ord))
        }
        (Operand::DateTime(t), Value::String(s)) => {
            parse_datetime(s).is_some_and(|x| ordered(op, x.cmp(t)))
        }
        _ => false,
    }
}
