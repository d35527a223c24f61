// Package problem writes RFC 9457 problem details (application/problem+json).
// Every error reply of the API goes through here so that clients see one
// stable shape and never an internal detail (an upstream URL, a key, a stack).
package problem
