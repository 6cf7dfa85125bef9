/**
 * @file
 * Any protobuf-c message as JSON (jansson), for corepipectl --json: the proto field names
 * (snake_case, as in docs/api.md and Python's MessageToDict(preserving_proto_field_name=True)),
 * every field of the message including defaults (a stable shape for scripts), maps as objects,
 * enums by name, 64-bit integers as numbers, bytes as base64, unset oneof members and unset
 * sub-messages left out.
 *
 * Context: any thread. Ownership: the caller owns the returned json_t (json_decref).
 */
#ifndef COREPIPE_CTL_PBJSON_H
#define COREPIPE_CTL_PBJSON_H

#include <jansson.h>
#include <protobuf-c/protobuf-c.h>
#include <stddef.h>
#include <stdint.h>

/** @return a new JSON object for @p m, or NULL when out of memory. */
json_t *ctl_pb_to_json(const ProtobufCMessage *m);

/** @return a new JSON string with the base64 (RFC 4648, padded) of @p len bytes at @p p. */
json_t *ctl_base64(const uint8_t *p, size_t len);

#endif
