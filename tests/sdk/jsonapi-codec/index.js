// A stand-in for @23blocks/jsonapi-codec, written for promptd's SDK test from
// that package's documented behaviour (its public source is not on the npm
// registry this project can reach). It offers the functions
// @23blocks/block-jarvis imports, with the same contract:
//
//   decodeOne(doc, mapper)        data must be one resource object; else throws
//   decodeMany(doc, mapper)       data must be an array; else throws
//   decodePageResult(doc, mapper) { data: [...] (empty unless an array),
//                                   meta: { currentPage, totalPages, totalCount, perPage } }
//                                 read from meta.current_page / total_pages /
//                                 total_count / per_page, defaulting to 1, 1, 0, 0
//
// A mapper is { type, map(resource, included) }; `included` is a Map keyed
// "type:id" built from the document's `included` array.
//
// Kept deliberately strict: a server that answers the wrong shape makes the
// SDK call throw, so the test sees it.

function isObject(v) {
  return v !== null && typeof v === 'object' && !Array.isArray(v);
}

export function indexIncluded(included) {
  const byKey = new Map();
  if (Array.isArray(included)) {
    for (const r of included) {
      if (isObject(r)) byKey.set(`${r.type}:${r.id}`, r);
    }
  }
  return byKey;
}

function asDocument(response) {
  return isObject(response) ? response : {};
}

export function decodeOne(response, mapper) {
  const doc = asDocument(response);
  if (!isObject(doc.data)) {
    throw new Error('Expected single resource document');
  }
  return mapper.map(doc.data, indexIncluded(doc.included));
}

export function decodeOneOrNull(response, mapper) {
  const doc = asDocument(response);
  return isObject(doc.data) ? mapper.map(doc.data, indexIncluded(doc.included)) : null;
}

export function decodeMany(response, mapper) {
  const doc = asDocument(response);
  if (!Array.isArray(doc.data)) {
    throw new Error('Expected collection document');
  }
  const included = indexIncluded(doc.included);
  return doc.data.map((r) => mapper.map(r, included));
}

export function extractPageMeta(meta) {
  const m = isObject(meta) ? meta : {};
  const pick = (key, fallback) => (m[key] === undefined || m[key] === null ? fallback : m[key]);
  return {
    currentPage: pick('current_page', 1),
    totalPages: pick('total_pages', 1),
    totalCount: pick('total_count', 0),
    perPage: pick('per_page', 0),
  };
}

export function decodePageResult(response, mapper) {
  const doc = asDocument(response);
  return {
    data: Array.isArray(doc.data) ? decodeMany(doc, mapper) : [],
    meta: extractPageMeta(doc.meta),
  };
}
