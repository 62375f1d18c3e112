package matrix

import (
	"encoding/json"
	"errors"
	"reflect"
	"strings"
	"testing"
)

// The examples of the spec's appendix "Canonical JSON", verbatim.
var specCanonicalVectors = []struct{ in, want string }{
	{`{}`, `{}`},
	{`{
    "one": 1,
    "two": "Two"
}`, `{"one":1,"two":"Two"}`},
	{`{
    "b": "2",
    "a": "1"
}`, `{"a":"1","b":"2"}`},
	{`{"b":"2","a":"1"}`, `{"a":"1","b":"2"}`},
	{`{
    "auth": {
        "success": true,
        "mxid": "@john.doe:example.com",
        "profile": {
            "display_name": "John Doe",
            "three_pids": [
                {
                    "medium": "email",
                    "address": "john.doe@example.org"
                },
                {
                    "medium": "msisdn",
                    "address": "123456789"
                }
            ]
        }
    }
}`, `{"auth":{"mxid":"@john.doe:example.com","profile":{"display_name":"John Doe","three_pids":[{"address":"john.doe@example.org","medium":"email"},{"address":"123456789","medium":"msisdn"}]},"success":true}}`},
	{`{
    "a": "日本語"
}`, `{"a":"日本語"}`},
	{`{
    "本": 2,
    "日": 1
}`, `{"日":1,"本":2}`},
	{`{
    "a": "\u65E5"
}`, `{"a":"日"}`},
	{`{
    "a": null
}`, `{"a":null}`},
	{`{
    "a": -0,
    "b": 1e10
}`, `{"a":0,"b":10000000000}`},
}

func TestCanonicalJSONSpecVectors(t *testing.T) {
	for _, c := range specCanonicalVectors {
		got, err := CanonicalJSON([]byte(c.in))
		if err != nil {
			t.Errorf("CanonicalJSON(%s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("CanonicalJSON(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestCanonicalJSON(t *testing.T) {
	cases := []struct{ in, want string }{
		// Any JSON value, not only objects.
		{`true`, `true`},
		{` false `, `false`},
		{`null`, `null`},
		{`"x"`, `"x"`},
		{`[ 1 , [ ] , { } ]`, `[1,[],{}]`},
		// Escapes: only what JSON requires, short forms where they exist,
		// lower-case hex; no HTML escaping, U+2028 and DEL stay raw.
		{`"\"\\\/\b\f\n\r\t\u0001\u001F\u007f"`, "\"\\\"\\\\/\\b\\f\\n\\r\\t\\u0001\\u001f\x7f\""},
		{`"<&>\u2028\u00e9"`, "\"<&>\u2028é\""},
		{`"\ud83d\ude00"`, `"😀"`},
		// Keys sorted by code point, which is not UTF-16 order.
		{`{"\uffff":1,"😀":2,"a":3,"B":4}`, `{"B":4,"a":3,"￿":1,"😀":2}`},
		// Numbers: integral values in range, whatever their spelling.
		{`[9007199254740991,-9007199254740991]`, `[9007199254740991,-9007199254740991]`},
		{`[1.0,1.50e1,100e-2,0.0,-0.0,0e99999999999999999999,1E+2,12300e-2]`, `[1,15,1,0,0,0,100,123]`},
		{`[9.007199254740991e15]`, `[9007199254740991]`},
	}
	for _, c := range cases {
		got, err := CanonicalJSON([]byte(c.in))
		if err != nil {
			t.Errorf("CanonicalJSON(%s): %v", c.in, err)
			continue
		}
		if string(got) != c.want {
			t.Errorf("CanonicalJSON(%s)\n got %s\nwant %s", c.in, got, c.want)
		}
	}
}

func TestCanonicalJSONErrors(t *testing.T) {
	cases := []string{
		``,
		` `,
		`{`,
		`{"a"}`,
		`{"a":1,}`,
		`[1,]`,
		`{} {}`,
		`{}x`,
		`1.5`,
		`0.1`,
		`1e-1`,
		`1e99999999999999999999`,
		`9007199254740992`,
		`-9007199254740992`,
		`9.007199254740992e15`,
		`123456789012345678901234567890`,
		`NaN`,
		`01`,
		`{"a":1,"a":2}`,
		`{"x":{"a":1,"b":2,"a":1}}`,
		"\"\xff\"",
		"{\"\xc3\":1}",
		strings.Repeat("[", maxJSONDepth+1) + strings.Repeat("]", maxJSONDepth+1),
	}
	for _, in := range cases {
		got, err := CanonicalJSON([]byte(in))
		if !errors.Is(err, ErrBadJSON) {
			t.Errorf("CanonicalJSON(%.40q) = %s, %v; want ErrBadJSON", in, got, err)
		}
	}
	// The depth limit is not off by one.
	deep := strings.Repeat("[", maxJSONDepth) + strings.Repeat("]", maxJSONDepth)
	if _, err := CanonicalJSON([]byte(deep)); err != nil {
		t.Errorf("nesting of %d: %v", maxJSONDepth, err)
	}
}

func FuzzCanonicalJSON(f *testing.F) {
	for _, c := range specCanonicalVectors {
		f.Add([]byte(c.in))
	}
	f.Add([]byte(`{"a":[1,-0,1e3,"\u0000\ud800"],"b":{"c":null,"d":true}}`))
	f.Fuzz(func(t *testing.T, in []byte) {
		got, err := CanonicalJSON(in)
		if err != nil {
			if !errors.Is(err, ErrBadJSON) {
				t.Fatalf("error %v does not wrap ErrBadJSON", err)
			}
			return
		}
		again, err := CanonicalJSON(got)
		if err != nil || string(again) != string(got) {
			t.Fatalf("not idempotent: %s -> %s, %v", got, again, err)
		}
		var a, b any
		if err := json.Unmarshal(in, &a); err != nil {
			t.Fatalf("accepted input encoding/json rejects: %v", err)
		}
		if err := json.Unmarshal(got, &b); err != nil {
			t.Fatalf("output is not JSON: %s: %v", got, err)
		}
		if !reflect.DeepEqual(a, b) {
			t.Fatalf("value changed: %s -> %s", in, got)
		}
	})
}
