package warmpool

import (
	"strings"
	"testing"
)

func TestParseSpec(t *testing.T) {
	for _, tc := range []struct {
		in      string
		want    string // Spec.String
		wantErr []string
	}{
		{in: "", want: ""},
		{in: "tiny=2", want: "tiny=2"},
		{in: "tiny=2,debian=1", want: "debian=1,tiny=2"},
		{in: " tiny=2 , debian=1 ", want: "debian=1,tiny=2"},
		{in: "tiny=16", want: "tiny=16"},
		{in: "tiny", wantErr: []string{`"tiny": use TEMPLATE=N`}},
		{in: "=2", wantErr: []string{"use TEMPLATE=N"}},
		{in: "tiny=", wantErr: []string{"use TEMPLATE=N"}},
		{in: "tiny=0", wantErr: []string{"from 1 to 16"}},
		{in: "tiny=-1", wantErr: []string{"from 1 to 16"}},
		{in: "tiny=17", wantErr: []string{"from 1 to 16"}},
		{in: "tiny=1000000", wantErr: []string{"from 1 to 16"}},
		{in: "tiny=two", wantErr: []string{"from 1 to 16"}},
		{in: "Tiny=1", wantErr: []string{"invalid name"}},
		{in: "tiny=1,tiny=2", wantErr: []string{"named twice"}},
		{in: "tiny=1;debian=1", wantErr: []string{"from 1 to 16"}},
		{in: "tiny=x,debian", wantErr: []string{`"tiny=x"`, `"debian"`}},
	} {
		got, err := ParseSpec(tc.in)
		if len(tc.wantErr) == 0 {
			if err != nil || got.String() != tc.want {
				t.Errorf("ParseSpec(%q) = %q, %v; want %q", tc.in, got.String(), err, tc.want)
			}
			continue
		}
		if err == nil {
			t.Errorf("ParseSpec(%q) = %q, no error; want %q", tc.in, got.String(), tc.wantErr)
			continue
		}
		for _, w := range tc.wantErr {
			if !strings.Contains(err.Error(), w) {
				t.Errorf("ParseSpec(%q): error %q lacks %q", tc.in, err, w)
			}
		}
	}
}

func TestSpecAlias(t *testing.T) {
	s := Spec{"base": 2, "tiny": 1}
	if err := s.Alias("base", "debian"); err != nil || s.String() != "debian=2,tiny=1" {
		t.Errorf("base -> debian: %q %v", s.String(), err)
	}
	s = Spec{"base": 2, "tiny": 1}
	if err := s.Alias("base", "tiny"); err == nil || !strings.Contains(err.Error(), "same template") {
		t.Errorf("base and tiny when base is tiny: %v", err)
	}
	s = Spec{"tiny": 1}
	if err := s.Alias("base", "debian"); err != nil || s.String() != "tiny=1" {
		t.Errorf("no base: %q %v", s.String(), err)
	}
}
