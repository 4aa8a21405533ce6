/*
 * Compiled inner loops for aggregator's parser workers.
 *
 * Each function here computes exactly what a pure-Python function in the
 * aggregator package computes (named beside it), only without the
 * interpreter's cost per byte or per value; aggregator falls back to the
 * Python when this module was not built. tests/test_speedups.py checks
 * that both give the same results.
 *
 * It is a top-level module, not aggregator._speedups: `python -m pytest`
 * from a checkout imports the aggregator package from the source tree,
 * where no compiled file lies, while this module still comes from the
 * installed environment.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* Whether `value` is a str; if not, a TypeError saying `message` is set. */
static int
is_str(PyObject *value, const char *message)
{
    if (PyUnicode_Check(value))
        return 1;
    PyErr_SetString(PyExc_TypeError, message);
    return 0;
}

/*
 * langid_walk(nextmove, rowbase, out_feat, text) -> (indexes, counts) | None
 *
 * py3langid's visit_counts: walk the byte DFA over `text` and count each
 * feature an output state emits. The answer is two buffers, int64 feature
 * indexes and their float32 counts, in the order the features first
 * occur, which is the order of the Counter that visit_counts returns; the
 * caller's NumPy scoring then sums in the same order and gives the same
 * floating-point result. None when no feature occurs.
 *
 * nextmove: uint32 per (state, byte); rowbase: int64 offset of each state's
 * row; out_feat: int32 feature per state, negative for none.
 */
static PyObject *
langid_walk(PyObject *self, PyObject *args)
{
    Py_buffer nextmove, rowbase, out, text;
    PyObject *result = NULL;
    int64_t *indexes = NULL;
    int32_t *slots = NULL;
    float *counts = NULL;

    if (!PyArg_ParseTuple(args, "y*y*y*y*", &nextmove, &rowbase, &out, &text))
        return NULL;

    const uint32_t *nm = (const uint32_t *)nextmove.buf;
    const int64_t *rows = (const int64_t *)rowbase.buf;
    const int32_t *features = (const int32_t *)out.buf;
    const Py_ssize_t nm_len = nextmove.len / (Py_ssize_t)sizeof(uint32_t);
    const Py_ssize_t states = rowbase.len / (Py_ssize_t)sizeof(int64_t);
    const Py_ssize_t out_len = out.len / (Py_ssize_t)sizeof(int32_t);
    const unsigned char *bytes = (const unsigned char *)text.buf;
    const Py_ssize_t length = text.len;

    /* A feature per byte at most: an open-addressing table of twice that
     * many slots, a power of two, maps a feature to its place in the answer. */
    size_t capacity = 16;
    while (capacity < (size_t)length * 2)
        capacity <<= 1;
    indexes = PyMem_Malloc(sizeof(int64_t) * (size_t)(length ? length : 1));
    counts = PyMem_Malloc(sizeof(float) * (size_t)(length ? length : 1));
    slots = PyMem_Malloc(sizeof(int32_t) * capacity);
    if (indexes == NULL || counts == NULL || slots == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    memset(slots, 0xff, sizeof(int32_t) * capacity); /* -1: empty */

    Py_ssize_t found = 0;
    uint32_t state = 0;
    for (Py_ssize_t i = 0; i < length; i++) {
        if ((Py_ssize_t)state >= states) {
            PyErr_SetString(PyExc_ValueError, "langid_walk: a state outside the model");
            goto done;
        }
        int64_t at = rows[state] + bytes[i];
        if (at < 0 || at >= nm_len) {
            PyErr_SetString(PyExc_ValueError, "langid_walk: a move outside the model");
            goto done;
        }
        state = nm[at];
        if ((Py_ssize_t)state >= out_len) {
            PyErr_SetString(PyExc_ValueError, "langid_walk: a state outside the model");
            goto done;
        }
        int32_t feature = features[state];
        if (feature < 0)
            continue;
        size_t slot = ((uint32_t)feature * 2654435761u) & (capacity - 1);
        for (;;) {
            int32_t held = slots[slot];
            if (held < 0) {
                slots[slot] = (int32_t)found;
                indexes[found] = feature;
                counts[found] = 1.0f;
                found++;
                break;
            }
            if (indexes[held] == feature) {
                counts[held] += 1.0f;
                break;
            }
            slot = (slot + 1) & (capacity - 1);
        }
    }
    if (found == 0) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    result = Py_BuildValue("(y#y#)", (const char *)indexes, found * (Py_ssize_t)sizeof(int64_t),
                           (const char *)counts, found * (Py_ssize_t)sizeof(float));

done:
    PyMem_Free(indexes);
    PyMem_Free(counts);
    PyMem_Free(slots);
    PyBuffer_Release(&nextmove);
    PyBuffer_Release(&rowbase);
    PyBuffer_Release(&out);
    PyBuffer_Release(&text);
    return result;
}

/*
 * half_rows(matrix, width, halves, indexes) -> bytes
 *
 * NumPy's `matrix[indexes].astype(float32)` for a C-contiguous float16
 * matrix of `width` columns (passed as its uint16 bits): the rows named by
 * the int64 `indexes`, as float32. Each value goes through `halves`, the
 * float32 of every float16 bit pattern as NumPy converts it, so the result
 * is NumPy's bit for bit. py3langid's scoring casts the rows it gathers
 * this way before its matrix product, one value at a time.
 */
static PyObject *
half_rows(PyObject *self, PyObject *args)
{
    Py_buffer matrix, indexes, halves;
    Py_ssize_t width;
    if (!PyArg_ParseTuple(args, "y*ny*y*", &matrix, &width, &halves, &indexes))
        return NULL;
    PyObject *result = NULL;
    const uint16_t *values = (const uint16_t *)matrix.buf;
    const Py_ssize_t total = matrix.len / (Py_ssize_t)sizeof(uint16_t);
    const int64_t *rows = (const int64_t *)indexes.buf;
    const Py_ssize_t count = indexes.len / (Py_ssize_t)sizeof(int64_t);
    const float *table = (const float *)halves.buf;
    if (width < 1 || halves.len != 65536 * (Py_ssize_t)sizeof(float)) {
        PyErr_SetString(PyExc_ValueError, "half_rows: a width below 1 or not a table of 65536");
        goto done;
    }
    const Py_ssize_t height = total / width;
    result = PyBytes_FromStringAndSize(NULL, count * width * (Py_ssize_t)sizeof(float));
    if (result == NULL)
        goto done;
    float *out = (float *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        const int64_t row = rows[i];
        if (row < 0 || row >= height) {
            Py_CLEAR(result);
            PyErr_SetString(PyExc_IndexError, "half_rows: a row outside the matrix");
            goto done;
        }
        const uint16_t *from = values + row * width;
        float *to = out + i * width;
        for (Py_ssize_t j = 0; j < width; j++)
            to[j] = table[from[j]];
    }

done:
    PyBuffer_Release(&matrix);
    PyBuffer_Release(&indexes);
    PyBuffer_Release(&halves);
    return result;
}

/*
 * word_runs(text) -> tuple of str
 *
 * tuple(re.findall(r"[^\W_]+", text)) (aggregator.folding.words_of): the
 * maximal runs of characters that are letters or digits, which is what
 * that class means to Python's re on str (its \w is str.isalnum() or "_").
 */
static unsigned char ascii_alnum[128];

static PyObject *
word_runs(PyObject *self, PyObject *text)
{
    if (!is_str(text, "word_runs: text must be str"))
        return NULL;
    const Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *words = PyList_New(0);
    if (words == NULL)
        return NULL;
    Py_ssize_t i = 0;
    while (i < length) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (ch < 128 ? !ascii_alnum[ch] : !Py_UNICODE_ISALNUM(ch)) {
            i++;
            continue;
        }
        const Py_ssize_t start = i;
        for (i++; i < length; i++) {
            ch = PyUnicode_READ(kind, data, i);
            if (ch < 128 ? !ascii_alnum[ch] : !Py_UNICODE_ISALNUM(ch))
                break;
        }
        PyObject *word = PyUnicode_Substring(text, start, i);
        if (word == NULL || PyList_Append(words, word) < 0) {
            Py_XDECREF(word);
            Py_DECREF(words);
            return NULL;
        }
        Py_DECREF(word);
    }
    PyObject *result = PyList_AsTuple(words);
    Py_DECREF(words);
    return result;
}

/*
 * prefixed_words(text, prefixes) -> frozenset of str
 *
 * frozenset(re.findall(pattern, text)) for aggregator.topics' candidate
 * pattern: the whole \w runs of `text` (\w as Python's re has it on str:
 * str.isalnum() or "_") that start with one of `prefixes`. `prefixes` is
 * bytes of native uint64 values, (first << 32) | second for a two-character
 * prefix and (first << 32) | 0xFFFFFFFF for a one-character one; the caller
 * gives only prefixes of \w characters, so every match starts a run.
 */
static inline int
is_word(Py_UCS4 ch)
{
    return ch < 128 ? (ascii_alnum[ch] || ch == '_') : Py_UNICODE_ISALNUM(ch);
}

static PyObject *
prefixed_words(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_buffer table;
    if (!PyArg_ParseTuple(args, "Uy*:prefixed_words", &text, &table))
        return NULL;
    const char *keys = (const char *)table.buf;  /* any buffer: read unaligned */
    const Py_ssize_t count = table.len / (Py_ssize_t)sizeof(uint64_t);
    const Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    PyObject *found = PyFrozenSet_New(NULL);
    if (found == NULL) {
        PyBuffer_Release(&table);
        return NULL;
    }
    Py_ssize_t i = 0;
    while (i < length) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (!is_word(ch)) {
            i++;
            continue;
        }
        const Py_ssize_t start = i;
        const uint64_t first = (uint64_t)ch << 32;
        for (i++; i < length && is_word(PyUnicode_READ(kind, data, i)); i++)
            ;
        const uint64_t alone = first | 0xFFFFFFFFu;
        const uint64_t pair = i - start >= 2
            ? first | PyUnicode_READ(kind, data, start + 1) : alone;
        int match = 0;
        for (Py_ssize_t k = 0; k < count && !match; k++) {
            uint64_t key;
            memcpy(&key, keys + k * (Py_ssize_t)sizeof key, sizeof key);
            match = key == alone || key == pair;
        }
        if (!match)
            continue;
        PyObject *word = PyUnicode_Substring(text, start, i);
        if (word == NULL || PySet_Add(found, word) < 0) {
            Py_XDECREF(word);
            Py_DECREF(found);
            PyBuffer_Release(&table);
            return NULL;
        }
        Py_DECREF(word);
    }
    PyBuffer_Release(&table);
    return found;
}

/*
 * strip_controls(text) -> str
 *
 * aggregator.sanitize.strip_control_chars: `text` without the characters
 * XML 1.0 forbids, C1 controls and lone surrogates (U+0000-0008, 000B,
 * 000C, 000E-001F, 007F-009F, D800-DFFF, FFFE, FFFF). `text` itself when
 * it has none, which is nearly always.
 */
static unsigned char latin1_control[256];

static inline int
is_control(Py_UCS4 ch)
{
    if (ch < 256)
        return latin1_control[ch];
    return (ch >= 0xD800 && ch <= 0xDFFF) || ch == 0xFFFE || ch == 0xFFFF;
}

/* `text` without the characters `drop` is true of: `text` itself when none.
 * Inlined into each caller, so that its loop calls `drop` inlined too (through
 * the pointer, strip_controls took twice as long). */
#if defined(__GNUC__)
#define ALWAYS_INLINE inline __attribute__((always_inline))
#else
#define ALWAYS_INLINE inline
#endif

static ALWAYS_INLINE PyObject *
strip_where(PyObject *text, int (*drop)(Py_UCS4))
{
    const Py_ssize_t length = PyUnicode_GET_LENGTH(text);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t first = 0;
    while (first < length && !drop(PyUnicode_READ(kind, data, first)))
        first++;
    if (first == length)
        return Py_NewRef(text);
    char *kept = PyMem_Malloc((size_t)length * (size_t)kind);
    if (kept == NULL)
        return PyErr_NoMemory();
    memcpy(kept, data, (size_t)first * (size_t)kind);
    Py_ssize_t count = first;
    for (Py_ssize_t i = first + 1; i < length; i++) {
        const Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        if (!drop(ch)) {
            PyUnicode_WRITE(kind, kept, count, ch);
            count++;
        }
    }
    /* Narrowed to the smallest kind that holds what is left, as every str must be. */
    PyObject *result = PyUnicode_FromKindAndData(kind, kept, count);
    PyMem_Free(kept);
    return result;
}

static PyObject *
strip_controls(PyObject *self, PyObject *text)
{
    if (!is_str(text, "strip_controls: text must be str"))
        return NULL;
    return strip_where(text, is_control);
}

/*
 * strip_marks(text) -> str
 *
 * aggregator.folding's _COMBINING_MARKS.sub("", text): `text` without the
 * combining marks of U+0300-036F, 1AB0-1AFF, 1DC0-1DFF, 20D0-20FF and
 * FE20-FE2F. `text` itself when it has none.
 */
static int
is_combining_mark(Py_UCS4 ch)
{
    if (ch < 0x300)
        return 0;
    return ch <= 0x36F || (ch >= 0x1AB0 && ch <= 0x1AFF) || (ch >= 0x1DC0 && ch <= 0x1DFF)
        || (ch >= 0x20D0 && ch <= 0x20FF) || (ch >= 0xFE20 && ch <= 0xFE2F);
}

static PyObject *
strip_marks(PyObject *self, PyObject *text)
{
    if (!is_str(text, "strip_marks: text must be str"))
        return NULL;
    return strip_where(text, is_combining_mark);
}

/*
 * sanitized_text(html) -> str | None
 *
 * aggregator.sanitize.sanitized_html_to_text in one pass: a space before
 * each block-level tag, every tag removed (from "<" to the next ">"; a "<"
 * with no ">" after it stays), the references sanitize_html writes (&amp;
 * &lt; &gt; &quot; &#160;) decoded, and runs of whitespace (str.split's)
 * made one space, none at either end. None for input it cannot answer as the
 * Python would: any other "&", or a character past ASCII where a block tag's
 * name is compared (re's IGNORECASE matches the Kelvin sign to "k", say).
 * The caller then runs the Python; sanitize_html's own output never needs it.
 */
static const char *const block_tags[] = {
    "address", "article", "aside", "blockquote", "br", "caption", "dd", "div", "dl", "dt",
    "figcaption", "figure", "footer", "h1", "h2", "h3", "h4", "h5", "h6", "header", "hr",
    "li", "main", "nav", "ol", "p", "pre", "section", "table", "tbody", "td", "tfoot", "th",
    "thead", "tr", "ul", NULL,
};

/* 1: a block tag's name starts at `at`; 0: not; -1: undecidable here. */
static inline __attribute__((always_inline)) int
block_tag_at(int kind, const void *data, Py_ssize_t length, Py_ssize_t at)
{
    if (at < length && PyUnicode_READ(kind, data, at) == '/')
        at++;
    for (const char *const *name = block_tags; *name != NULL; name++) {
        Py_ssize_t i = at;
        const char *c = *name;
        for (; *c != '\0' && i < length; c++, i++) {
            Py_UCS4 ch = PyUnicode_READ(kind, data, i);
            if (ch >= 128)
                return -1;
            if (ch >= 'A' && ch <= 'Z')
                ch += 'a' - 'A';
            if (ch != (Py_UCS4)*c)
                break;
        }
        if (*c != '\0' || i >= length)
            continue;
        const Py_UCS4 next = PyUnicode_READ(kind, data, i);
        if (next == '/' || next == '>' || Py_UNICODE_ISSPACE(next))
            return 1;
    }
    return 0;
}

/* The character the reference at `at` ("&...;") stands for, its length in
 * `*size`; 0 for any reference but the five. */
static inline __attribute__((always_inline)) Py_UCS4
reference_at(int kind, const void *data, Py_ssize_t length, Py_ssize_t at, Py_ssize_t *size)
{
    static const struct { const char *text; Py_UCS4 ch; } known[] = {
        {"&amp;", '&'}, {"&lt;", '<'}, {"&gt;", '>'}, {"&quot;", '"'}, {"&#160;", 0xA0},
    };
    for (size_t k = 0; k < sizeof(known) / sizeof(known[0]); k++) {
        const char *c = known[k].text;
        Py_ssize_t i = at;
        while (*c != '\0' && i < length && PyUnicode_READ(kind, data, i) == (Py_UCS4)*c) {
            c++;
            i++;
        }
        if (*c == '\0') {
            *size = i - at;
            return known[k].ch;
        }
    }
    return 0;
}

/* The loop, inlined once per kind of str so that each reads its characters
 * without asking the kind again: twice as fast on the Latin-1 text of most posts. */
static inline __attribute__((always_inline)) PyObject *
sanitized_text_of(const int kind, const void *data, const Py_ssize_t length)
{
    /* U+00A0 fits every kind; a "<" kept with a space before it is the only
     * growth, so twice the length is room enough. */
    void *out = PyMem_Malloc((size_t)(2 * length + 1) * (size_t)kind);
    if (out == NULL)
        return PyErr_NoMemory();
    Py_ssize_t count = 0, i = 0;
    /* Once a "<" finds no ">" after it, no later one will. */
    int closes_left = 1, pending_space = 0;
    while (i < length) {
        Py_UCS4 ch = PyUnicode_READ(kind, data, i);
        Py_ssize_t advance = 1;
        if (ch == '<') {
            const int block = block_tag_at(kind, data, length, i + 1);
            if (block < 0)
                goto undecided;
            if (block && count > 0)
                pending_space = 1;
            Py_ssize_t close = -1;
            if (closes_left) {
                for (Py_ssize_t j = i + 1; j < length; j++) {
                    if (PyUnicode_READ(kind, data, j) == '>') {
                        close = j;
                        break;
                    }
                }
                closes_left = close >= 0;
            }
            if (close >= 0) {
                i = close + 1;
                continue;
            }
            /* No ">" follows: the "<" is text. */
        }
        else if (ch == '&') {
            ch = reference_at(kind, data, length, i, &advance);
            if (ch == 0)
                goto undecided;
        }
        if (Py_UNICODE_ISSPACE(ch)) {
            pending_space = count > 0;
        }
        else {
            if (pending_space) {
                PyUnicode_WRITE(kind, out, count, ' ');
                count++;
                pending_space = 0;
            }
            PyUnicode_WRITE(kind, out, count, ch);
            count++;
        }
        i += advance;
    }
    PyObject *result = PyUnicode_FromKindAndData(kind, out, count);
    PyMem_Free(out);
    return result;

undecided:
    PyMem_Free(out);
    Py_RETURN_NONE;
}

static PyObject *
sanitized_text(PyObject *self, PyObject *html)
{
    if (!is_str(html, "sanitized_text: html must be str"))
        return NULL;
    const Py_ssize_t length = PyUnicode_GET_LENGTH(html);
    const void *data = PyUnicode_DATA(html);
    switch (PyUnicode_KIND(html)) {
    case PyUnicode_1BYTE_KIND:
        return sanitized_text_of(PyUnicode_1BYTE_KIND, data, length);
    case PyUnicode_2BYTE_KIND:
        return sanitized_text_of(PyUnicode_2BYTE_KIND, data, length);
    default:
        return sanitized_text_of(PyUnicode_4BYTE_KIND, data, length);
    }
}

/*
 * bloom(bits, keys, hashes, add) -> bytes
 *
 * A Bloom filter over str keys in the writable buffer `bits`: per key, 1
 * when every one of its `hashes` bit
 * positions was set, else 0; with `add` true the positions are set too. The
 * positions come from the key's str hash by double hashing (Kirsch and
 * Mitzenmacher), so a filter means something only within one process.
 * aggregator.dedupe_index.KeyFilter keeps one; there is no Python twin:
 * without this module every key is looked up in the database.
 */
static PyObject *
bloom(PyObject *self, PyObject *args)
{
    Py_buffer bits;
    PyObject *keys;
    int hashes, add;
    if (!PyArg_ParseTuple(args, "w*Oip", &bits, &keys, &hashes, &add))
        return NULL;
    PyObject *result = NULL;
    PyObject *sequence = PySequence_Fast(keys, "bloom: keys must be a sequence");
    const uint64_t size = (uint64_t)bits.len * 8;
    if (sequence == NULL)
        goto done;
    if (bits.len == 0 || hashes < 1 || hashes > 32) {
        PyErr_SetString(PyExc_ValueError, "bloom: bits must not be empty, hashes 1 to 32");
        goto done;
    }
    const Py_ssize_t n = PySequence_Fast_GET_SIZE(sequence);
    result = PyBytes_FromStringAndSize(NULL, n);
    if (result == NULL)
        goto done;
    unsigned char *found = (unsigned char *)PyBytes_AS_STRING(result);
    unsigned char *bytes = (unsigned char *)bits.buf;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *key = PySequence_Fast_GET_ITEM(sequence, i);
        if (!is_str(key, "bloom: keys must be str")) {
            Py_CLEAR(result);
            goto done;
        }
        const Py_hash_t hash = PyObject_Hash(key);
        if (hash == -1 && PyErr_Occurred()) {
            Py_CLEAR(result);
            goto done;
        }
        const uint64_t h = (uint64_t)hash;
        const uint64_t h1 = h & 0xFFFFFFFFu, h2 = (h >> 32) | 1;
        unsigned char all = 1;
        for (int k = 0; k < hashes; k++) {
            const uint64_t at = (h1 + (uint64_t)k * h2) % size;
            const unsigned char mask = (unsigned char)(1u << (at & 7));
            if (!(bytes[at >> 3] & mask)) {
                all = 0;
                if (!add)
                    break;
                bytes[at >> 3] |= mask;
            }
        }
        found[i] = all;
    }

done:
    Py_XDECREF(sequence);
    PyBuffer_Release(&bits);
    return result;
}

/*
 * minhash(shingles, seeds) -> tuple of int
 *
 * aggregator.dedupe._minhash: for every seed, the least splitmix64
 * finalizer value of (shingle XOR seed) over all shingles. Both buffers
 * hold uint64 values; the arithmetic wraps modulo 2^64 as NumPy's does.
 */
static PyObject *
minhash(PyObject *self, PyObject *args)
{
    Py_buffer shingles, seeds;
    if (!PyArg_ParseTuple(args, "y*y*", &shingles, &seeds))
        return NULL;
    const uint64_t *values = (const uint64_t *)shingles.buf;
    const uint64_t *keys = (const uint64_t *)seeds.buf;
    const Py_ssize_t n = shingles.len / (Py_ssize_t)sizeof(uint64_t);
    const Py_ssize_t k = seeds.len / (Py_ssize_t)sizeof(uint64_t);
    PyObject *result = NULL;

    if (n == 0) {
        result = PyTuple_New(0);
        goto done;
    }
    result = PyTuple_New(k);
    if (result == NULL)
        goto done;
    for (Py_ssize_t j = 0; j < k; j++) {
        const uint64_t seed = keys[j];
        uint64_t least = UINT64_MAX;
        for (Py_ssize_t i = 0; i < n; i++) {
            uint64_t x = values[i] ^ seed;
            x ^= x >> 30;
            x *= 0xBF58476D1CE4E5B9ull;
            x ^= x >> 27;
            x *= 0x94D049BB133111EBull;
            x ^= x >> 31;
            if (x < least)
                least = x;
        }
        PyObject *item = PyLong_FromUnsignedLongLong(least);
        if (item == NULL) {
            Py_CLEAR(result);
            goto done;
        }
        PyTuple_SET_ITEM(result, j, item);
    }

done:
    PyBuffer_Release(&shingles);
    PyBuffer_Release(&seeds);
    return result;
}

/*
 * BLAKE2b as RFC 7693 specifies it (no key, digests of 1 to 64 bytes),
 * for the dedupe hashes that hashlib.blake2b computes in Python: the
 * results must be the same bytes, since the keys are stored.
 */
static const uint64_t blake2b_iv[8] = {
    0x6a09e667f3bcc908ull, 0xbb67ae8584caa73bull, 0x3c6ef372fe94f82bull,
    0xa54ff53a5f1d36f1ull, 0x510e527fade682d1ull, 0x9b05688c2b3e6c1full,
    0x1f83d9abfb41bd6bull, 0x5be0cd19137e2179ull,
};

/* The message schedule of rounds 0 to 9; rounds 10 and 11 repeat 0 and 1. */
static const uint8_t blake2b_sigma[10][16] = {
    {0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12, 13, 14, 15},
    {14, 10, 4, 8, 9, 15, 13, 6, 1, 12, 0, 2, 11, 7, 5, 3},
    {11, 8, 12, 0, 5, 2, 15, 13, 10, 14, 3, 6, 7, 1, 9, 4},
    {7, 9, 3, 1, 13, 12, 11, 14, 2, 6, 5, 10, 4, 0, 15, 8},
    {9, 0, 5, 7, 2, 4, 10, 15, 14, 1, 11, 12, 6, 8, 3, 13},
    {2, 12, 6, 10, 0, 11, 8, 3, 4, 13, 7, 5, 15, 14, 1, 9},
    {12, 5, 1, 15, 14, 13, 4, 10, 0, 7, 6, 3, 9, 2, 8, 11},
    {13, 11, 7, 14, 12, 1, 3, 9, 5, 0, 15, 4, 8, 6, 2, 10},
    {6, 15, 14, 9, 11, 3, 0, 8, 12, 2, 13, 7, 1, 4, 10, 5},
    {10, 2, 8, 4, 7, 6, 1, 5, 15, 11, 9, 14, 3, 12, 13, 0},
};

static inline uint64_t
rotr64(uint64_t x, unsigned n)
{
    return (x >> n) | (x << (64 - n));
}

static inline uint64_t
load64_le(const unsigned char *p)
{
    uint64_t x = 0;
    for (int i = 7; i >= 0; i--)
        x = (x << 8) | p[i];
    return x;
}

#define B2B_G(a, b, c, d, x, y)          \
    do {                                 \
        v[a] = v[a] + v[b] + (x);        \
        v[d] = rotr64(v[d] ^ v[a], 32);  \
        v[c] = v[c] + v[d];              \
        v[b] = rotr64(v[b] ^ v[c], 24);  \
        v[a] = v[a] + v[b] + (y);        \
        v[d] = rotr64(v[d] ^ v[a], 16);  \
        v[c] = v[c] + v[d];              \
        v[b] = rotr64(v[b] ^ v[c], 63);  \
    } while (0)

static void
blake2b_compress(uint64_t h[8], const unsigned char block[128], uint64_t bytes, int last)
{
    uint64_t v[16], m[16];
    for (int i = 0; i < 16; i++)
        m[i] = load64_le(block + 8 * i);
    for (int i = 0; i < 8; i++) {
        v[i] = h[i];
        v[i + 8] = blake2b_iv[i];
    }
    v[12] ^= bytes; /* the byte counter's high word stays 0 below 2^64 bytes */
    if (last)
        v[14] = ~v[14];
    for (int r = 0; r < 12; r++) {
        const uint8_t *s = blake2b_sigma[r % 10];
        B2B_G(0, 4, 8, 12, m[s[0]], m[s[1]]);
        B2B_G(1, 5, 9, 13, m[s[2]], m[s[3]]);
        B2B_G(2, 6, 10, 14, m[s[4]], m[s[5]]);
        B2B_G(3, 7, 11, 15, m[s[6]], m[s[7]]);
        B2B_G(0, 5, 10, 15, m[s[8]], m[s[9]]);
        B2B_G(1, 6, 11, 12, m[s[10]], m[s[11]]);
        B2B_G(2, 7, 8, 13, m[s[12]], m[s[13]]);
        B2B_G(3, 4, 9, 14, m[s[14]], m[s[15]]);
    }
    for (int i = 0; i < 8; i++)
        h[i] ^= v[i] ^ v[i + 8];
}

/* The BLAKE2b state of a digest of `size` bytes, after hashing `data`. */
static void
blake2b_hash(uint64_t h[8], size_t size, const unsigned char *data, size_t length)
{
    unsigned char block[128];
    for (int i = 0; i < 8; i++)
        h[i] = blake2b_iv[i];
    h[0] ^= 0x01010000ull ^ (uint64_t)size;
    uint64_t done = 0;
    while (length > 128) {
        done += 128;
        blake2b_compress(h, data, done, 0);
        data += 128;
        length -= 128;
    }
    memset(block, 0, sizeof(block));
    memcpy(block, data, length);
    blake2b_compress(h, block, done + length, 1);
}

/* A str as UTF-8 bytes with lone surrogates passed through, as Python's
 * encode("utf-8", "surrogatepass"): *owner holds a new reference or NULL. */
static const char *
utf8_of(PyObject *text, Py_ssize_t *length, PyObject **owner)
{
    *owner = NULL;
    const char *data = PyUnicode_AsUTF8AndSize(text, length);
    if (data != NULL)
        return data;
    if (!PyErr_ExceptionMatches(PyExc_UnicodeEncodeError))
        return NULL;
    PyErr_Clear();
    *owner = PyUnicode_AsEncodedString(text, "utf-8", "surrogatepass");
    if (*owner == NULL)
        return NULL;
    *length = PyBytes_GET_SIZE(*owner);
    return PyBytes_AS_STRING(*owner);
}

/*
 * word_shingles(words, cache, cache_limit, mix0, mix1, mix2) -> bytes
 *
 * aggregator.dedupe._shingle_hashes: every word's hash (the first 8 bytes
 * of its BLAKE2b-64 digest, little-endian, as _word_hash), then one hash
 * per run of three words, as uint64 values in text order. A text of one or
 * two words is one value. `cache` (a dict) remembers word hashes, as
 * _word_hash's lru_cache does; it is emptied when it reaches cache_limit.
 */
static PyObject *
word_shingles(PyObject *self, PyObject *args)
{
    PyObject *words, *cache;
    Py_ssize_t limit;
    unsigned long long mix0, mix1, mix2;
    if (!PyArg_ParseTuple(args, "O!O!nKKK", &PyTuple_Type, &words, &PyDict_Type, &cache,
                          &limit, &mix0, &mix1, &mix2))
        return NULL;
    const Py_ssize_t n = PyTuple_GET_SIZE(words);
    if (n == 0)
        return PyBytes_FromStringAndSize(NULL, 0);
    uint64_t *hashes = PyMem_Malloc(sizeof(uint64_t) * (size_t)n);
    if (hashes == NULL)
        return PyErr_NoMemory();
    PyObject *result = NULL;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *word = PyTuple_GET_ITEM(words, i);
        if (!PyUnicode_Check(word)) {
            PyErr_SetString(PyExc_TypeError, "word_shingles: words must be str");
            goto done;
        }
        PyObject *known = PyDict_GetItemWithError(cache, word);
        if (known != NULL) {
            hashes[i] = PyLong_AsUnsignedLongLong(known);
            if (hashes[i] == (uint64_t)-1 && PyErr_Occurred())
                goto done;
            continue;
        }
        if (PyErr_Occurred())
            goto done;
        Py_ssize_t length;
        PyObject *owner;
        const char *data = utf8_of(word, &length, &owner);
        if (data == NULL)
            goto done;
        uint64_t h[8];
        blake2b_hash(h, 8, (const unsigned char *)data, (size_t)length);
        Py_XDECREF(owner);
        hashes[i] = h[0];
        if (PyDict_GET_SIZE(cache) >= limit)
            PyDict_Clear(cache);
        PyObject *value = PyLong_FromUnsignedLongLong(h[0]);
        if (value == NULL)
            goto done;
        int failed = PyDict_SetItem(cache, word, value);
        Py_DECREF(value);
        if (failed)
            goto done;
    }
    if (n < 3) {
        uint64_t combined = 0;
        for (Py_ssize_t i = 0; i < n; i++)
            combined = combined * mix0 + hashes[i];
        result = PyBytes_FromStringAndSize((const char *)&combined, sizeof(combined));
        goto done;
    }
    const Py_ssize_t count = n - 2;
    result = PyBytes_FromStringAndSize(NULL, count * (Py_ssize_t)sizeof(uint64_t));
    if (result == NULL)
        goto done;
    uint64_t *out = (uint64_t *)PyBytes_AS_STRING(result);
    for (Py_ssize_t i = 0; i < count; i++) {
        uint64_t x = hashes[i] * mix0 + hashes[i + 1] * mix1 + hashes[i + 2] * mix2;
        out[i] = x ^ (x >> 29);
    }

done:
    PyMem_Free(hashes);
    return result;
}

/*
 * band_keys(signature, bands, rows) -> list of str
 *
 * aggregator.dedupe.band_keys for a signature of bands x rows values:
 * "bNN" and the hex BLAKE2b-48 digest of the band's values as 64-bit
 * little-endian words followed by a NUL byte.
 */
static PyObject *
band_keys(PyObject *self, PyObject *args)
{
    PyObject *signature;
    Py_ssize_t bands, rows;
    if (!PyArg_ParseTuple(args, "O!nn", &PyTuple_Type, &signature, &bands, &rows))
        return NULL;
    if (bands < 0 || bands > 99 || rows < 1 || rows > 15
            || PyTuple_GET_SIZE(signature) != bands * rows) {
        PyErr_SetString(PyExc_ValueError, "band_keys: the signature does not fit bands x rows");
        return NULL;
    }
    PyObject *keys = PyList_New(bands);
    if (keys == NULL)
        return NULL;
    static const char hex[] = "0123456789abcdef";
    unsigned char message[8 * 15 + 1];
    for (Py_ssize_t band = 0; band < bands; band++) {
        for (Py_ssize_t row = 0; row < rows; row++) {
            uint64_t value = PyLong_AsUnsignedLongLong(
                PyTuple_GET_ITEM(signature, band * rows + row));
            if (value == (uint64_t)-1 && PyErr_Occurred()) {
                Py_DECREF(keys);
                return NULL;
            }
            for (int byte = 0; byte < 8; byte++)
                message[8 * row + byte] = (unsigned char)(value >> (8 * byte));
        }
        message[8 * rows] = 0;
        uint64_t h[8];
        blake2b_hash(h, 6, message, (size_t)(8 * rows + 1));
        char key[3 + 12];
        key[0] = 'b';
        key[1] = (char)('0' + band / 10);
        key[2] = (char)('0' + band % 10);
        for (int byte = 0; byte < 6; byte++) {
            unsigned char octet = (unsigned char)(h[byte / 8] >> (8 * (byte % 8)));
            key[3 + 2 * byte] = hex[octet >> 4];
            key[4 + 2 * byte] = hex[octet & 15];
        }
        PyObject *text = PyUnicode_FromStringAndSize(key, sizeof(key));
        if (text == NULL) {
            Py_DECREF(keys);
            return NULL;
        }
        PyList_SET_ITEM(keys, band, text);
    }
    return keys;
}

/* blake2b_hex(data, size) -> str: hashlib.blake2b(data, digest_size=size).hexdigest(),
 * for the tests of the hash above. */
static PyObject *
blake2b_hex(PyObject *self, PyObject *args)
{
    Py_buffer data;
    Py_ssize_t size;
    if (!PyArg_ParseTuple(args, "y*n", &data, &size))
        return NULL;
    if (size < 1 || size > 64) {
        PyBuffer_Release(&data);
        PyErr_SetString(PyExc_ValueError, "blake2b_hex: size must be 1 to 64");
        return NULL;
    }
    uint64_t h[8];
    blake2b_hash(h, (size_t)size, (const unsigned char *)data.buf, (size_t)data.len);
    PyBuffer_Release(&data);
    static const char hex[] = "0123456789abcdef";
    char out[128];
    for (Py_ssize_t byte = 0; byte < size; byte++) {
        unsigned char octet = (unsigned char)(h[byte / 8] >> (8 * (byte % 8)));
        out[2 * byte] = hex[octet >> 4];
        out[2 * byte + 1] = hex[octet & 15];
    }
    return PyUnicode_FromStringAndSize(out, 2 * size);
}

static PyMethodDef methods[] = {
    {"langid_walk", langid_walk, METH_VARARGS,
     "langid_walk(nextmove, rowbase, out_feat, text) -> (indexes, counts) | None"},
    {"half_rows", half_rows, METH_VARARGS, "half_rows(matrix, width, halves, indexes) -> bytes"},
    {"minhash", minhash, METH_VARARGS, "minhash(shingles, seeds) -> tuple of int"},
    {"word_runs", word_runs, METH_O, "word_runs(text) -> tuple of str"},
    {"strip_controls", strip_controls, METH_O, "strip_controls(text) -> str"},
    {"strip_marks", strip_marks, METH_O, "strip_marks(text) -> str"},
    {"prefixed_words", prefixed_words, METH_VARARGS,
     "prefixed_words(text, prefixes) -> frozenset of str"},
    {"sanitized_text", sanitized_text, METH_O, "sanitized_text(html) -> str | None"},
    {"bloom", bloom, METH_VARARGS, "bloom(bits, keys, hashes, add) -> bytes"},
    {"word_shingles", word_shingles, METH_VARARGS,
     "word_shingles(words, cache, cache_limit, mix0, mix1, mix2) -> bytes of uint64"},
    {"band_keys", band_keys, METH_VARARGS, "band_keys(signature, bands, rows) -> list of str"},
    {"blake2b_hex", blake2b_hex, METH_VARARGS, "blake2b_hex(data, size) -> str"},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_aggregator_speedups",
    "Compiled inner loops for aggregator (see aggregator.speedups).", -1, methods,
};

PyMODINIT_FUNC
PyInit__aggregator_speedups(void)
{
    for (int ch = 0; ch < 128; ch++)
        ascii_alnum[ch] = (unsigned char)Py_UNICODE_ISALNUM((Py_UCS4)ch);
    for (int ch = 0; ch < 256; ch++)
        latin1_control[ch] = (unsigned char)((ch <= 0x08) || ch == 0x0B || ch == 0x0C
                                             || (ch >= 0x0E && ch <= 0x1F)
                                             || (ch >= 0x7F && ch <= 0x9F));
    return PyModule_Create(&module);
}
