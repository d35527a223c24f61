// Package tracing carries W3C Trace Context (traceparent, tracestate) from
// the request the Functions host sends to every outgoing HTTP call the
// handler makes, so that one daemon tick or one API request is one trace in
// Application Insights.
//
// What it owns: parsing and formatting the traceparent header (version 00,
// and later versions read as 00 as the specification asks), carrying a
// SpanContext in a context.Context, minting new trace and span IDs with
// crypto/rand, and Transport, the http.RoundTripper that stamps each outgoing
// request with the context's trace ID and a fresh parent span ID.
//
// What it does not own: exporting spans or telemetry (the platform's
// Application Insights integration correlates by trace ID), sampling
// decisions (the sampled flag is passed on as received), or deciding where a
// trace starts (package funcs reads the host's headers; package caller starts
// a trace for a tick the host sent none for).
package tracing
