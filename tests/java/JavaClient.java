// What a Java client (as Hermod may be) makes of an answer's base64 and image: run by tests/test_java_clients.py
// as `java JavaClient.java base64|image FILE`, where FILE holds one element's base64 text.
import java.awt.image.BufferedImage;
import java.io.ByteArrayInputStream;
import java.nio.file.Files;
import java.nio.file.Path;
import java.util.Base64;
import javax.imageio.ImageIO;

public class JavaClient {
    public static void main(String[] args) throws Exception {
        String text = Files.readString(Path.of(args[1])).trim();
        if (args[0].equals("base64")) {
            decode("basic", Base64.getDecoder(), text);
            decode("mime", Base64.getMimeDecoder(), text);
            return;
        }
        byte[] bytes = Base64.getMimeDecoder().decode(text);
        try {
            BufferedImage image = ImageIO.read(new ByteArrayInputStream(bytes));
            if (image == null) {
                System.out.println("image none");
                return;
            }
            int w = image.getWidth(), h = image.getHeight();
            System.out.printf("image %dx%d centre %06x%n", w, h, image.getRGB(w / 2, h / 2) & 0xffffff);
        } catch (Exception e) {
            System.out.println("image error " + e.getClass().getSimpleName() + ": " + e.getMessage());
        }
    }

    static void decode(String name, Base64.Decoder decoder, String text) {
        try {
            System.out.println(name + " decoded " + decoder.decode(text).length);
        } catch (IllegalArgumentException e) {
            System.out.println(name + " refused " + e.getMessage());
        }
    }
}
