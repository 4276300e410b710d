// Renders a Modelfile TEMPLATE for an /api/chat request the way Ollama's template.Parse and
// template.Execute do (ollama/ollama template/template.go, 2026 HEAD), so the test checks the
// prompt Ollama builds and not one assembled by hand: a template naming neither .Messages nor
// .Response gets {{ .Response }} appended; messages are collated (consecutive messages of one
// role merged with a blank line, every system message joined into .System); a template that
// names .Messages is executed once with .System and .Messages; any other is executed once per
// user/assistant pair, the last time cut after {{ .Response }}.
//
// Usage: render TEMPLATE_FILE MESSAGES_JSON (a list of {"role", "content"}).
package main

import (
	"bytes"
	"encoding/json"
	"os"
	"strings"
	"text/template"
	"text/template/parse"
)

type message struct {
	Role    string `json:"role"`
	Content string `json:"content"`
}

func identifiers(n parse.Node) []string {
	switch n := n.(type) {
	case *parse.ListNode:
		var names []string
		for _, c := range n.Nodes {
			names = append(names, identifiers(c)...)
		}
		return names
	case *parse.ActionNode:
		return identifiers(n.Pipe)
	case *parse.BranchNode:
		names := identifiers(n.Pipe)
		for _, l := range []*parse.ListNode{n.List, n.ElseList} {
			if l != nil {
				names = append(names, identifiers(l)...)
			}
		}
		return names
	case *parse.IfNode:
		return identifiers(&n.BranchNode)
	case *parse.RangeNode:
		return identifiers(&n.BranchNode)
	case *parse.WithNode:
		return identifiers(&n.BranchNode)
	case *parse.PipeNode:
		var names []string
		for _, c := range n.Cmds {
			for _, a := range c.Args {
				names = append(names, identifiers(a)...)
			}
		}
		return names
	case *parse.FieldNode:
		return n.Ident
	case *parse.VariableNode:
		return n.Ident
	}
	return nil
}

func contains(ids []string, name string) bool {
	for _, id := range ids {
		if id == name {
			return true
		}
	}
	return false
}

// names reports whether the template uses a field or variable (case-insensitive), as
// Ollama's Template.Vars does to choose between the .Messages and the legacy path.
func names(t *template.Template, name string) bool {
	for _, id := range identifiers(t.Tree.Root) {
		if strings.ToLower(id) == name {
			return true
		}
	}
	return false
}

func deleteNode(n parse.Node, fn func(parse.Node) bool) parse.Node {
	var walk func(n parse.Node) parse.Node
	walk = func(n parse.Node) parse.Node {
		if fn(n) {
			return nil
		}
		switch t := n.(type) {
		case *parse.ListNode:
			var nodes []parse.Node
			for _, c := range t.Nodes {
				if n := walk(c); n != nil {
					nodes = append(nodes, n)
				}
			}
			t.Nodes = nodes
			return t
		case *parse.IfNode:
			t.BranchNode = *(walk(&t.BranchNode).(*parse.BranchNode))
		case *parse.WithNode:
			t.BranchNode = *(walk(&t.BranchNode).(*parse.BranchNode))
		case *parse.RangeNode:
			t.BranchNode = *(walk(&t.BranchNode).(*parse.BranchNode))
		case *parse.BranchNode:
			t.List = walk(t.List).(*parse.ListNode)
			if t.ElseList != nil {
				t.ElseList = walk(t.ElseList).(*parse.ListNode)
			}
		case *parse.ActionNode:
			n := walk(t.Pipe)
			if n == nil {
				return nil
			}
			t.Pipe = n.(*parse.PipeNode)
		case *parse.PipeNode:
			var commands []*parse.CommandNode
			for _, c := range t.Cmds {
				var args []parse.Node
				for _, a := range c.Args {
					if n := walk(a); n != nil {
						args = append(args, n)
					}
				}
				if len(args) == 0 {
					return nil
				}
				c.Args = args
				commands = append(commands, c)
			}
			if len(commands) == 0 {
				return nil
			}
			t.Cmds = commands
		}
		return n
	}
	return walk(n)
}

func main() {
	text, _ := os.ReadFile(os.Args[1])
	raw, _ := os.ReadFile(os.Args[2])
	var msgs []message
	if err := json.Unmarshal(raw, &msgs); err != nil {
		panic(err)
	}
	tmpl := template.Must(template.New("").Option("missingkey=zero").Parse(string(text)))
	if !names(tmpl, "messages") && !names(tmpl, "response") {
		response := &parse.ActionNode{NodeType: parse.NodeAction, Pipe: &parse.PipeNode{
			NodeType: parse.NodePipe, Cmds: []*parse.CommandNode{{NodeType: parse.NodeCommand,
				Args: []parse.Node{&parse.FieldNode{NodeType: parse.NodeField, Ident: []string{"Response"}}}}}}}
		tmpl.Tree.Root.Nodes = append(tmpl.Tree.Root.Nodes, response)
	}
	// collate: consecutive messages of one role merge; every system message joins .System.
	var systems []string
	var collated []*message
	for i := range msgs {
		if msgs[i].Role == "system" {
			systems = append(systems, msgs[i].Content)
		}
		if len(collated) > 0 && collated[len(collated)-1].Role == msgs[i].Role {
			collated[len(collated)-1].Content += "\n\n" + msgs[i].Content
		} else {
			collated = append(collated, &msgs[i])
		}
	}
	if names(tmpl, "messages") {
		data := map[string]any{"System": strings.Join(systems, "\n\n"), "Messages": collated, "Response": ""}
		if err := tmpl.Execute(os.Stdout, data); err != nil {
			panic(err)
		}
		return
	}
	var b bytes.Buffer
	var system, prompt, response string
	execute := func() {
		data := map[string]any{"System": system, "Prompt": prompt, "Response": response}
		if err := tmpl.Execute(&b, data); err != nil {
			panic(err)
		}
		system, prompt, response = "", "", ""
	}
	for _, m := range collated {
		switch m.Role {
		case "system":
			if prompt != "" || response != "" {
				execute()
			}
			system = m.Content
		case "user":
			if response != "" {
				execute()
			}
			prompt = m.Content
		case "assistant":
			response = m.Content
		}
	}
	var cut bool
	nodes := deleteNode(tmpl.Tree.Root.Copy(), func(n parse.Node) bool {
		if field, ok := n.(*parse.FieldNode); ok && contains(field.Ident, "Response") {
			cut = true
			return false
		}
		return cut
	})
	tree := parse.Tree{Root: nodes.(*parse.ListNode)}
	last := template.Must(template.New("").AddParseTree("", &tree))
	data := map[string]any{"System": system, "Prompt": prompt, "Response": response}
	if err := last.Execute(&b, data); err != nil {
		panic(err)
	}
	os.Stdout.Write(b.Bytes())
}
