/*
 * Text from outside (common/base/text.c): what is refused as not text and
 * what is escaped for a person.
 */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "edgetel/text.h"

static void assert_check(const char *s, size_t len, bool control_ok, enum et_text_problem want,
                         size_t want_at)
{
    size_t at = 999;

    assert_int_equal(et_text_check(s, len, control_ok, &at), want);
    if (want != ET_TEXT_OK)
        assert_int_equal(at, want_at);
}

static void test_check(void **state)
{
    static const char utf8[] = "Temperatur \xc2\xb0" "C \xe2\x82\xac \xf0\x9f\x8c\xa1";

    assert_check("cpu.usage", 9, false, ET_TEXT_OK, 0);
    assert_check("", 0, false, ET_TEXT_OK, 0);
    assert_check(utf8, sizeof(utf8) - 1, false, ET_TEXT_OK, 0);
    assert_check("ab\0cd", 5, true, ET_TEXT_NUL, 2);
    /* Overlong NUL, a lone continuation byte, a cut sequence, a surrogate,
     * above U+10FFFF, overlong '/', bytes never in UTF-8. */
    assert_check("a\xc0\x80", 3, true, ET_TEXT_BAD_UTF8, 1);
    assert_check("\x80", 1, true, ET_TEXT_BAD_UTF8, 0);
    assert_check("ab\xe2\x82", 4, true, ET_TEXT_BAD_UTF8, 2);
    assert_check("\xed\xa0\x80", 3, true, ET_TEXT_BAD_UTF8, 0);
    assert_check("\xf4\x90\x80\x80", 4, true, ET_TEXT_BAD_UTF8, 0);
    assert_check("\xe0\x80\xaf", 3, true, ET_TEXT_BAD_UTF8, 0);
    assert_check("x\xff", 2, true, ET_TEXT_BAD_UTF8, 1);
    /* Control characters: refused where a name is expected, kept in free text. */
    assert_check("a\x1b[2J", 5, false, ET_TEXT_CONTROL, 1);
    assert_check("a\x1b[2J", 5, true, ET_TEXT_OK, 0);
    assert_check("line\nforged", 11, false, ET_TEXT_CONTROL, 4);
    assert_check("del\x7f", 4, false, ET_TEXT_CONTROL, 3);
    assert_check("c1 \xc2\x9b", 5, false, ET_TEXT_CONTROL, 3);   /* U+009B, CSI */
    assert_string_equal(et_text_problem_name(ET_TEXT_NUL), "holds a NUL byte");
    assert_string_equal(et_text_problem_name(ET_TEXT_BAD_UTF8), "is not valid UTF-8");
}

static void assert_escape(const char *in, const char *want)
{
    char out[ET_TEXT_ESCAPED_MAX(64)];

    assert_string_equal(et_text_escape(in, out, sizeof(out)), want);
    /* The fast path may send UTF-8 to the slow one; never the reverse. */
    if (strcmp(in, want) != 0)
        assert_true(et_text_needs_escape(in));
}

static void test_escape(void **state)
{
    char small[8];

    assert_escape("plain text, 20 Cel", "plain text, 20 Cel");
    assert_escape("20 \xc2\xb0" "C", "20 \xc2\xb0" "C");   /* UTF-8 kept */
    assert_escape("\x1b[2J\x1b[1;1Hfake", "\\x1b[2J\\x1b[1;1Hfake");
    assert_escape("a\nb\rc\td", "a\\nb\\rc\\td");
    assert_escape("del\x7f bell\x07", "del\\x7f bell\\x07");
    assert_escape("csi \xc2\x9b" "2J", "csi \\u009b2J");
    assert_escape("bad \xff\xc0\x80 end", "bad \\xff\\xc0\\x80 end");
    assert_escape("cut \xe2\x82", "cut \\xe2\\x82");
    /* Too small: cut at a whole escape, always terminated. */
    assert_string_equal(et_text_escape("ab\x1b\x1b", small, sizeof(small)), "ab\\x1b");
    assert_string_equal(et_text_escape("abc", small, 1), "");
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_check),
        cmocka_unit_test(test_escape),
    };

    return cmocka_run_group_tests(tests, NULL, NULL);
}
