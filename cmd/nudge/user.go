package main

import (
	"bufio"
	"context"
	"crypto/rand"
	"errors"
	"flag"
	"fmt"
	"io"
	"net/mail"
	"os"
	"slices"
	"strings"
	"text/tabwriter"
	"time"
	"unicode/utf8"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/term"

	"github.com/nudge/nudge"
)

// bcryptCost is the work factor of console password hashes: about a quarter
// of a second on a server core, paid once per sign-in.
const bcryptCost = 12

// minPassword is the shortest console password accepted, in characters.
const minPassword = 10

// runUser manages console users. The password never comes from a flag (it
// would sit in the shell history and the process list): it is read from
// stdin with --password-stdin, or prompted for twice on a terminal.
func runUser(ctx context.Context, what string, args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	var (
		email, role   string
		passwordStdin bool
	)
	more := func(fs *flag.FlagSet) {
		if what == "create" {
			fs.StringVar(&email, "email", "", "the address the user signs in with")
			fs.StringVar(&role, "role", "", "admin (users and settings), editor (journeys) or viewer (read only)")
			fs.BoolVar(&passwordStdin, "password-stdin", false, "read the password from stdin instead of prompting")
		}
	}
	switch what {
	case "create", "list":
	default:
		fmt.Fprintln(stderr, "usage: nudge user create --email EMAIL --role admin|editor|viewer [--password-stdin] | list")
		return errUsage
	}
	s, _, fs, err := openFor(ctx, "user "+what, args, stderr, more)
	if err != nil {
		return err
	}
	defer s.Close()
	if fs.NArg() > 0 {
		return fmt.Errorf("user %s: unexpected argument %q", what, fs.Arg(0))
	}
	switch what {
	case "create":
		if a, err := mail.ParseAddress(email); err != nil || a.Address != strings.TrimSpace(email) {
			return fmt.Errorf("--email %q: want a plain address such as ann@example.com", email)
		}
		if !slices.Contains(nudge.UserRoles, role) {
			return fmt.Errorf("--role %q: want one of %s", role, strings.Join(nudge.UserRoles, ", "))
		}
		password, err := readPassword(stdin, stderr, passwordStdin)
		if err != nil {
			return err
		}
		hash, err := bcrypt.GenerateFromPassword([]byte(password), bcryptCost)
		if err != nil {
			return fmt.Errorf("hash password: %w", err)
		}
		u := &nudge.User{
			ID:           "usr_" + strings.ToLower(rand.Text()),
			Email:        email,
			Role:         role,
			PasswordHash: hash,
			CreatedAt:    nudge.SystemClock{}.Now(),
		}
		if err := s.UserCreate(ctx, u); err != nil {
			return err
		}
		fmt.Fprintf(stdout, "created %s user %s (%s)\n", u.Role, u.Email, u.ID)
	case "list":
		users, err := s.UserList(ctx)
		if err != nil {
			return err
		}
		w := tabwriter.NewWriter(stdout, 0, 4, 2, ' ', 0)
		fmt.Fprintln(w, "ID\tEMAIL\tROLE\tCREATED")
		for _, u := range users {
			fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.ID, u.Email, u.Role, u.CreatedAt.Format(time.RFC3339))
		}
		return w.Flush()
	}
	return nil
}

// readPassword reads the first line of stdin with --password-stdin, or else
// prompts twice without echo when stdin is a terminal.
func readPassword(stdin io.Reader, stderr io.Writer, fromStdin bool) (string, error) {
	var password string
	if fromStdin {
		line, err := bufio.NewReader(stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return "", fmt.Errorf("read password from stdin: %w", err)
		}
		password = strings.TrimRight(line, "\r\n")
	} else {
		f, ok := stdin.(*os.File)
		if !ok || !term.IsTerminal(int(f.Fd())) {
			return "", errors.New("no terminal to prompt for a password on: pipe it in with --password-stdin")
		}
		prompt := func(p string) (string, error) {
			fmt.Fprint(stderr, p)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(stderr)
			return string(b), err
		}
		var err error
		if password, err = prompt("Password: "); err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		again, err := prompt("Password again: ")
		if err != nil {
			return "", fmt.Errorf("read password: %w", err)
		}
		if again != password {
			return "", errors.New("the passwords do not match")
		}
	}
	switch n := utf8.RuneCountInString(password); {
	case n < minPassword:
		return "", fmt.Errorf("the password is too short: want at least %d characters", minPassword)
	case len(password) > 72:
		return "", errors.New("the password is too long: bcrypt keeps at most 72 bytes")
	}
	return password, nil
}
