// Glue helpers shared by the N-API files: argument checks that throw TypeError/RangeError
// instead of crashing, and Node-style system errors built from -errno.
#pragma once
#include <napi.h>

#include <cstdint>
#include <string>

namespace qvol {

// The SystemError class handed over once by src/native/binding.ts (better-sqlite3's trick),
// so errors made here are instances of the TypeScript class.
void SetErrorClass(Napi::Env env, Napi::Function ctor);

// Builds `CODE: description, syscall 'path' -> 'dest'` with code, errno, syscall, path and
// dest set, as Node's uvException does.
Napi::Error MakeSystemError(Napi::Env env, int neg_errno, const std::string& syscall,
                            const std::string& path = "", const std::string& dest = "");

int RequireFd(const Napi::CallbackInfo& info, size_t i, const char* name);
uint64_t RequireU64(const Napi::CallbackInfo& info, size_t i, const char* name);
uint64_t U64Property(Napi::Object obj, const char* name, uint64_t fallback);
std::string StringProperty(Napi::Object obj, const char* name);
bool BoolProperty(Napi::Object obj, const char* name, bool fallback);

}  // namespace qvol
