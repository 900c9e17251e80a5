import CustodyCore
import Testing

@Suite struct HubIDTests {
    @Test(arguments: [
        ("https://huggingface.co/meta-llama/Llama-3.1-8B", "meta-llama/Llama-3.1-8B"),
        ("HTTPS://HuggingFace.co/Qwen/Qwen2.5-7B", "Qwen/Qwen2.5-7B"),
        ("http://huggingface.co/a/b", "a/b"),
        ("https://hf.co/a/b", "a/b"),
        ("http://hf.co/a/b", "a/b"),
        ("huggingface.co/a/b", "a/b"),
        ("hf.co/a/b", "a/b"),
        ("hf://a/b", "a/b"),
    ])
    func everyWrittenFormLosesItsPrefixAndKeepsItsCase(written: String, id: String) {
        #expect(HubID.removingPrefix(written) == id)
    }

    @Test(arguments: ["meta-llama/Llama-3.1-8B", "https://example.com/a/b", "acme/m@1", ""])
    func textWithoutAHubPrefixIsLeftAlone(text: String) {
        #expect(HubID.removingPrefix(text) == nil)
    }
}
